/// A typed, zero-copy view of one tensor inside a mapped file. Copies happen only when a caller asks
/// (`toFloat32`, `copyBytes`); raw access is closure-scoped so no pointer outlives the mapping.
public struct TensorView: @unchecked Sendable {
    public let info: TensorInfo
    public let file: MappedFile
    /// Absolute offset of the tensor's first byte in the file.
    public let fileOffset: Int

    public init(info: TensorInfo, file: MappedFile, fileOffset: Int) {
        self.info = info
        self.file = file
        self.fileOffset = fileOffset
    }

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
    public var elementCount: Int { info.elementCount }
    public var byteCount: Int { info.byteCount }
    public var byteRange: Range<Int> { fileOffset..<(fileOffset + info.byteCount) }

    /// The tensor's raw little-endian bytes, valid only inside `body`. May be unaligned.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.withBytes(byteRange, body)
    }

    public func copyBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// The values as float32 (exact for every dtype but F64, I32/I64/U32/U64 beyond 2^24).
    public func toFloat32() -> [Float] {
        // A whole-tensor pass (merge, convert): ask the kernel for what follows at once.
        file.readAhead(from: fileOffset)
        return [Float](unsafeUninitializedCapacity: elementCount) { out, count in
            withUnsafeBytes { raw in
                DTypeConversion.decode(raw, dtype: dtype, into: UnsafeMutableBufferPointer(rebasing: out[0..<elementCount]))
            }
            count = elementCount
        }
    }

    /// The values as float32, valid only inside `body`: aligned F32 data is read in place from the mapping (no
    /// copy), any other dtype is decoded into a temporary buffer first.
    public func withFloat32<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        file.readAhead(from: fileOffset)
        let aligned = withUnsafeBytes { Int(bitPattern: $0.baseAddress) % MemoryLayout<Float>.alignment == 0 }
        if dtype == .f32 && aligned {
            return try withUnsafeBytes { try $0.withMemoryRebound(to: Float.self, body) }
        }
        let values = toFloat32()
        return try values.withUnsafeBufferPointer(body)
    }

    /// Decodes into a caller-owned float32 buffer of exactly `elementCount` elements.
    public func decode(into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count == elementCount)
        withUnsafeBytes { DTypeConversion.decode($0, dtype: dtype, into: out) }
    }

    /// Decodes the elements `range` (row-major order) into `out` (exactly `range.count` floats), to process a
    /// large tensor piece by piece without a full-size float32 copy.
    public func decode(elements range: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= elementCount && out.count == range.count,
                     "element range outside the tensor")
        let size = dtype.size
        file.withBytes((fileOffset + range.lowerBound * size)..<(fileOffset + range.upperBound * size)) {
            DTypeConversion.decode($0, dtype: dtype, into: out)
        }
    }

    /// Decodes the elements `range` like `decode(elements:into:)` for a pass that reads the tensor front to back
    /// once: the kernel is asked ahead of the read, and the pages read are unmapped from this process after it
    /// (the page cache keeps them), so streaming a large tensor never holds it resident. The release reaches
    /// back past the range's start: a page fault also maps the aligned pages around it (fault-around, 64 KB by
    /// default), which would otherwise bring back part of the block released before.
    public func stream(elements range: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) {
        let bytes = (fileOffset + range.lowerBound * dtype.size)..<(fileOffset + range.upperBound * dtype.size)
        file.readAhead(from: bytes.lowerBound)
        decode(elements: range, into: out)
        file.adviseDontNeed(max(0, bytes.lowerBound - Self.faultAroundReach)..<bytes.upperBound)
    }

    /// More than the kernel's largest fault-around window.
    private static let faultAroundReach = 2 << 20
}
