#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Safetensors

/// What an operation computes for one output tensor when the writer reaches it.
public enum ComputedTensor: Sendable {
    /// Float32 values, encoded to the output dtype (overflow checked).
    case floats([Float])
    /// Bytes already in the output dtype.
    case bytes([UInt8])
}

extension OutputTensor {
    /// An input tensor carried over in `dtype`: copied from the mmap when it already has it, else converted
    /// chunk by chunk while writing.
    public static func from(_ view: TensorView, as dtype: DType? = nil) -> OutputTensor {
        let target = dtype ?? view.dtype
        return target == view.dtype ? .copy(view) : .converted(view, to: target)
    }

    /// A tensor computed when the writer reaches it (and released after). Float results are encoded to `dtype`
    /// and `check` sees what the encoding lost, so an overflow can stop the write before anything is in place.
    public static func computing(name: String, dtype: DType, shape: [Int], check: CheckpointStreamer.Check? = nil,
                                 _ produce: @escaping () throws -> ComputedTensor) -> OutputTensor {
        .computed(name: name, dtype: dtype, shape: shape) { buffer in
            switch try produce() {
            case let .bytes(bytes):
                guard bytes.count == buffer.count else {
                    throw WeightOpsError.invalidInput(path: name, reason: "computed \(bytes.count) bytes, the tensor needs \(buffer.count)")
                }
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            case let .floats(values):
                guard values.count * dtype.size == buffer.count else {
                    throw WeightOpsError.invalidInput(path: name, reason: "computed \(values.count) values for \(shape)")
                }
                let stats = try values.withUnsafeBufferPointer { try DTypeConversion.encode($0, as: dtype, into: buffer) }
                try check?(name, dtype, stats)
            }
        }
    }

    /// Bytes this tensor takes in the file.
    public var byteCount: Int { shape.reduce(dtype.size, *) }
}

/// Writes checkpoints with `SafetensorsWriter` (streaming, byte-identical to safetensors' save_file, atomic),
/// adding a check of every conversion before the file is put in place: one tensor that would overflow F16 fails
/// the whole write and leaves nothing behind.
public enum CheckpointStreamer {
    /// Sees what encoding a tensor lost; throwing stops the write.
    public typealias Check = (_ tensor: String, _ dtype: DType, _ stats: ConversionStats) throws -> Void

    /// Writes one file: to a hidden sibling, checked, then renamed to `path`. `progress` gets (done, total) bytes.
    public static func write(to path: String, tensors: [OutputTensor], metadata: [String: String]?,
                             check: Check? = nil, progress: ((Int, Int) -> Void)? = nil) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let pending = ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent(".\(name).ea-weights-\(getpid())")
        var writer = SafetensorsWriter(metadata: metadata, progress: progress)
        writer.isCancelled = { Interruption.isRequested }
        let dtypes = Dictionary(tensors.map { ($0.name, $0.dtype) }, uniquingKeysWith: { a, _ in a })
        do {
            let report = try writer.write(tensors, to: pending)
            // Views converted by the writer report their losses only now; computed tensors were checked while written.
            for (tensor, stats) in report.conversions.sorted(by: { $0.key < $1.key }) {
                try check?(tensor, dtypes[tensor] ?? .f32, stats)
            }
            guard rename(pending, path) == 0 else {
                throw WeightOpsError.invalidInput(path: path, reason: "cannot be written: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(pending)
            throw error
        }
    }
}
