import Safetensors

/// The values of a computed tensor between the writer's first and last chunk request.
final class HeldValues: @unchecked Sendable {
    var values: [Float] = []
}

extension OutputTensor {
    /// An input tensor carried over in `dtype`: copied from the mmap when it already has it, else converted
    /// chunk by chunk while writing.
    public static func from(_ view: TensorView, as dtype: DType? = nil) -> OutputTensor {
        let target = dtype ?? view.dtype
        return target == view.dtype ? .copy(view) : .converted(view, to: target)
    }

    /// Float32 values computed when the writer reaches the tensor, encoded to `dtype` while streaming and
    /// released once written. What the encoding lost lands in the write report (and `CheckpointStreamer.Check`).
    public static func computingFloats(name: String, dtype: DType, shape: [Int],
                                       _ produce: @escaping () throws -> [Float]) -> OutputTensor {
        let held = HeldValues()
        let total = shape.reduce(1, *)
        return .computedFloat32(name: name, dtype: dtype, shape: shape) { range, out in
            if range.lowerBound == 0 || held.values.isEmpty {
                held.values = try produce()
                guard held.values.count == total else {
                    throw WeightOpsError.invalidInput(path: name, reason: "computed \(held.values.count) values for shape \(shape)")
                }
            }
            held.values.withUnsafeBufferPointer { all in
                _ = out.update(fromContentsOf: UnsafeBufferPointer(rebasing: all[range]))
            }
            if range.upperBound == total { held.values = [] }
        }
    }

    /// Bytes (already in `dtype`) computed when the writer reaches the tensor.
    public static func computingBytes(name: String, dtype: DType, shape: [Int],
                                      _ produce: @escaping () throws -> [UInt8]) -> OutputTensor {
        .computed(name: name, dtype: dtype, shape: shape) { buffer in
            let bytes = try produce()
            guard bytes.count == buffer.count else {
                throw WeightOpsError.invalidInput(path: name, reason: "computed \(bytes.count) bytes, the tensor needs \(buffer.count)")
            }
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }

    /// Bytes this tensor takes in the file.
    public var byteCount: Int { shape.reduce(dtype.size, *) }
}

/// Writes checkpoints with `SafetensorsWriter` (streaming, byte-identical to safetensors' save_file, atomic),
/// checking every conversion as it is written: one tensor that would overflow F16 fails the whole write and
/// leaves nothing behind. Ctrl-C (after `Interruption.install()`) stops it the same way.
public enum CheckpointStreamer {
    /// Sees what encoding a tensor lost; throwing stops the write.
    public typealias Check = (_ tensor: String, _ dtype: DType, _ stats: ConversionStats) throws -> Void

    /// Writes one file atomically. `progress` gets (done, total) bytes; `finalMetadata` completes the header once
    /// the data is written (see `SafetensorsWriter.finalMetadata`).
    public static func write(to path: String, tensors: [OutputTensor], metadata: [String: String]?,
                             finalMetadata: (() throws -> [String: String]?)? = nil,
                             check: Check? = nil, progress: ((Int, Int) -> Void)? = nil) throws {
        let writer = SafetensorsWriter(metadata: metadata, progress: progress, isCancelled: { Interruption.isRequested },
                                       checkConversion: check, finalMetadata: finalMetadata)
        try writer.write(tensors, to: path)
    }
}

extension TensorView {
    /// Gives the pages of this tensor back to the kernel once its values have been read. The range reaches 2 MB
    /// past both ends: a page fault maps neighbouring pages too (up to a 2 MB page-cache folio), so releasing
    /// only the tensor would let the resident set creep up over a long run. Not the whole mapping: unmapping
    /// walks the range's page tables, and a whole multi-GB file per tensor cost a tenth of `convert`'s time.
    func releaseMapping() {
        let reach = 2 << 20
        file.adviseDontNeed(max(0, byteRange.lowerBound - reach)..<min(file.size, byteRange.upperBound + reach))
    }
}
