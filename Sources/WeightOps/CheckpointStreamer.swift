import Safetensors

/// One tensor of a checkpoint being written, and where its bytes come from.
public struct OutputTensor: Sendable {
    public enum Source: @unchecked Sendable {
        /// The input's bytes, unchanged (the dtypes must match): copied straight from the mmap.
        case copy(TensorView)
        /// The input converted to the output dtype chunk by chunk, as PyTorch's `.to(dtype)` would.
        case convert(TensorView)
        /// Values computed when the writer reaches the tensor, then released.
        case compute(() throws -> ComputedTensor)
    }

    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let source: Source

    public init(name: String, dtype: DType, shape: [Int], source: Source) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.source = source
    }

    /// An input tensor carried over in `dtype` (copied when it already has it).
    public static func from(_ view: TensorView, as dtype: DType? = nil) -> OutputTensor {
        let target = dtype ?? view.dtype
        return OutputTensor(name: view.name, dtype: target, shape: view.shape,
                            source: target == view.dtype ? .copy(view) : .convert(view))
    }

    public var byteCount: Int { shape.reduce(dtype.size, *) }
}

/// What a `.compute` source produces.
public enum ComputedTensor: Sendable {
    /// Float32 values, encoded to the output dtype on write.
    case floats([Float])
    /// Bytes already in the output dtype.
    case bytes([UInt8])
}

/// Streams `OutputTensor`s into safetensors files: one tensor at a time, so memory stays near the largest
/// computed tensor whatever the checkpoint size. Copied inputs are released from memory (madvise) once
/// written, so reading a multi-GB mmap does not grow the resident set either.
public enum CheckpointStreamer {
    /// Called after each tensor is encoded, before the next; throwing aborts the whole write (nothing is left
    /// at the destination). `stats` says what narrowing lost (zero for copies).
    public typealias Check = (_ tensor: OutputTensor, _ stats: ConversionStats) throws -> Void

    /// Bytes handed to the writer per call when copying or converting large tensors.
    static let chunkBytes = 16 << 20

    /// Writes one file atomically. `progress` gets (bytes written, total bytes).
    public static func write(to path: String, tensors: [OutputTensor], metadata: [String: String],
                             check: Check? = nil, progress: ((Int, Int) -> Void)? = nil) throws {
        let total = tensors.reduce(0) { $0 + $1.byteCount }
        var done = 0
        var byName: [String: OutputTensor] = [:]
        for t in tensors { byName[t.name] = t }
        try StreamingFileWriter.write(path: path, tensors: tensors.map { ($0.name, $0.dtype, $0.shape) },
                                      metadata: metadata) { name, sink in
            guard let t = byName[name] else { return }
            let stats = try emit(t, into: sink)
            try check?(t, stats)
            done += t.byteCount
            progress?(done, total)
        }
    }

    static func emit(_ t: OutputTensor, into sink: (UnsafeRawBufferPointer) throws -> Void) throws -> ConversionStats {
        switch t.source {
        case let .copy(view):
            precondition(view.dtype == t.dtype, "copy needs equal dtypes")
            try view.withUnsafeBytes { raw in
                var start = 0
                while start < raw.count {
                    let end = min(raw.count, start + chunkBytes)
                    try sink(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                    start = end
                }
            }
            view.file.adviseDontNeed(view.byteRange)
            return .zero
        case let .convert(view):
            var stats = ConversionStats.zero
            let inStep = max(1, chunkBytes / max(t.dtype.size, view.dtype.size)) * view.dtype.size
            var out = [UInt8](repeating: 0, count: inStep / view.dtype.size * t.dtype.size)
            try view.withUnsafeBytes { raw in
                var start = 0
                while start < raw.count {
                    let end = min(raw.count, start + inStep)
                    let n = (end - start) / view.dtype.size * t.dtype.size
                    try out.withUnsafeMutableBytes { o in
                        stats += try DTypeConversion.convert(UnsafeRawBufferPointer(rebasing: raw[start..<end]),
                                                             from: view.dtype, to: t.dtype,
                                                             into: UnsafeMutableRawBufferPointer(rebasing: o[0..<n]))
                        try sink(UnsafeRawBufferPointer(rebasing: o[0..<n]))
                    }
                    start = end
                }
            }
            view.file.adviseDontNeed(view.byteRange)
            return stats
        case let .compute(produce):
            switch try produce() {
            case let .bytes(bytes):
                precondition(bytes.count == t.byteCount, "computed tensor has the wrong size")
                try bytes.withUnsafeBytes { try sink($0) }
                return .zero
            case let .floats(values):
                precondition(values.count * t.dtype.size == t.byteCount, "computed tensor has the wrong size")
                if t.dtype == .f32 {
                    try values.withUnsafeBytes { try sink($0) }
                    return .zero
                }
                var out = [UInt8](repeating: 0, count: t.byteCount)
                let stats = try values.withUnsafeBufferPointer { v in
                    try out.withUnsafeMutableBytes { try DTypeConversion.encode(v, as: t.dtype, into: $0) }
                }
                try out.withUnsafeBytes { try sink($0) }
                return stats
            }
        }
    }
}
