/// A tensor to write: its header entry and where its bytes come from. Nothing is read, converted or computed
/// until the writer reaches it, so a writer holds at most one tensor's chunk in memory at a time.
public struct OutputTensor {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    let source: Source

    enum Source {
        /// Bytes of a mapped tensor, copied as they are or converted to `dtype` chunk by chunk.
        case view(TensorView)
        case bytes([UInt8])
        case floats([Float])
        case fill((UnsafeMutableRawBufferPointer) throws -> Void)
        case float32Chunks((Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> Void)
    }

    init(name: String, dtype: DType, shape: [Int], source: Source) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.source = source
    }

    /// The view's bytes copied straight from its file's mapping, under its own name or `name`.
    public static func copy(_ view: TensorView, as name: String? = nil) -> OutputTensor {
        OutputTensor(name: name ?? view.name, dtype: view.dtype, shape: view.shape, source: .view(view))
    }

    /// The view converted to `dtype` exactly as PyTorch's `.to(dtype)` would, chunk by chunk while writing
    /// (a plain copy when the dtypes match). Counts of overflowed/underflowed/NaN values land in the report.
    public static func converted(_ view: TensorView, to dtype: DType, as name: String? = nil) -> OutputTensor {
        OutputTensor(name: name ?? view.name, dtype: dtype, shape: view.shape, source: .view(view))
    }

    /// Little-endian bytes already in memory (exactly product(shape) × dtype size of them).
    public static func bytes(_ bytes: [UInt8], name: String, dtype: DType, shape: [Int]) -> OutputTensor {
        OutputTensor(name: name, dtype: dtype, shape: shape, source: .bytes(bytes))
    }

    /// Float32 values in memory (row-major, product(shape) of them), encoded as the float type `dtype`.
    public static func floats(_ values: [Float], name: String, dtype: DType, shape: [Int]) -> OutputTensor {
        OutputTensor(name: name, dtype: dtype, shape: shape, source: .floats(values))
    }

    /// Bytes computed when the writer reaches this tensor: `fill` gets a zeroed buffer of exactly the tensor's
    /// byte count (this tensor, and only it, is then held in memory).
    public static func computed(name: String, dtype: DType, shape: [Int],
                                fill: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) -> OutputTensor {
        OutputTensor(name: name, dtype: dtype, shape: shape, source: .fill(fill))
    }

    /// Float32 values computed piece by piece and encoded as the float type `dtype` while streaming, so even a
    /// GB-sized tensor never exists in full. `chunk` is called in order with consecutive element ranges
    /// (row-major; whole rows of the last dimension whenever a row fits in a chunk) and fills exactly
    /// `range.count` floats.
    public static func computedFloat32(
        name: String, dtype: DType, shape: [Int],
        chunk: @escaping (_ elements: Range<Int>, _ into: UnsafeMutableBufferPointer<Float>) throws -> Void
    ) -> OutputTensor {
        OutputTensor(name: name, dtype: dtype, shape: shape, source: .float32Chunks(chunk))
    }

    var entry: FileLayout.Entry { FileLayout.Entry(name: name, dtype: dtype, shape: shape) }

    /// Checks that the source can produce this entry, before anything is written.
    func validate(path: String) throws {
        let bytes = try FileLayout.byteCount(dtype: dtype, shape: shape, name: name, path: path)
        let count = bytes / dtype.size
        func mismatch(_ reason: String) -> SafetensorsError {
            SafetensorsError.invalidWrite(path: path, reason: "tensor '\(name)': \(reason)")
        }
        switch source {
        case let .view(view):
            guard view.shape == shape else { throw mismatch("shape \(shape) differs from its source's \(view.shape)") }
            if view.dtype != dtype && !DTypeConversion.canEncode(dtype) {
                throw SafetensorsError.unsupportedConversion(path: view.file.path, tensor: view.name, from: view.dtype, to: dtype)
            }
        case let .bytes(data):
            guard data.count == bytes else { throw mismatch("\(data.count) bytes given, \(dtype.rawValue) \(shape) needs \(bytes)") }
        case let .floats(values):
            guard values.count == count else { throw mismatch("\(values.count) values given, shape \(shape) holds \(count)") }
            guard DTypeConversion.canEncode(dtype) else { throw mismatch("float values cannot be stored as \(dtype.rawValue)") }
        case .fill:
            break
        case .float32Chunks:
            guard DTypeConversion.canEncode(dtype) else { throw mismatch("float values cannot be stored as \(dtype.rawValue)") }
        }
    }
}
