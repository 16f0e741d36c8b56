import Foundation
import EANumerics
import Safetensors
import WeightOps

/// `--lora` for generation: EasyAnimate's `merge_lora(pipeline, path, multiplier)` applied to the loaded
/// weights, through the same plan and float32 math as `ea-weights merge-lora`.
///
/// The merged tensors stay float32, as in EasyAnimate's float32 pipeline, which merges into the weights it
/// loaded as float32 (rounding them back to a BF16 checkpoint's dtype moves the fixture's video by 7e-3). They
/// go to an unlinked temporary safetensors file (what `merge-lora --dtype f32` writes) that is mapped and
/// layered over the checkpoint: the page cache holds them, not the process. Kept as arrays, a LoRA on every
/// Linear of T5-XXL (about 19 GB of float32) would not fit beside the model in 24 GB.
public enum InMemoryLoRA {
    /// The merged weights of each component, to layer over its checkpoint (nil: the LoRAs change nothing there).
    public struct Merged: Sendable {
        public var transformer: SafetensorsFile?
        public var textEncoder: SafetensorsFile?
        public var report: LoRAMergeReport

        public init(report: LoRAMergeReport) {
            self.report = report
        }
    }

    /// Merges `specs` into the weights of both components. The temporary files go to `temporaryFolder`
    /// (default: $TMPDIR or /tmp), which needs room for the tensors the LoRAs change.
    public static func merge(_ specs: [LoRASpec], transformer: any StateDict, textEncoder: any StateDict,
                             temporaryFolder: String = FileManager.default.temporaryDirectory.path) throws -> Merged {
        // The merge computes with sgemm before any model is loaded.
        try BLAS.ensureAvailable()
        let files = try specs.map { try LoRAFile(path: $0.path) }
        let plan = LoRAMergePlan(components: [("transformer", transformer, .transformer),
                                              ("text_encoder", textEncoder, .textEncoder)],
                                 loras: files, specs: specs)
        try plan.validate(strict: false)
        var merged = Merged(report: plan.report)
        for component in plan.components where !component.updates.isEmpty {
            let file = try write(component.updates, of: component.base, plan: plan, into: temporaryFolder)
            if component.target == .transformer { merged.transformer = file } else { merged.textEncoder = file }
        }
        return merged
    }

    /// Writes the merged tensors, maps the file and unlinks it: the mapping keeps the data for as long as the
    /// model uses it, and nothing is left behind when the process ends.
    private static func write(_ updates: [String: [LoRAMergePlan.Application]], of base: any StateDict,
                              plan: LoRAMergePlan, into folder: String) throws -> SafetensorsFile {
        let path = (folder as NSString).appendingPathComponent("ea-weights-lora-\(getpid())-\(UUID().uuidString).safetensors")
        let tensors = try updates.keys.sorted().map { key in
            let view = try base.tensor(key)
            return OutputTensor.computingFloats(name: key, dtype: OutputDType.f32.target(for: view.dtype), shape: view.shape) {
                var values = view.toFloat32()
                try values.withUnsafeMutableBufferPointer { try plan.apply(updates[key] ?? [], to: $0, tensor: key) }
                return values
            }
        }
        try CheckpointStreamer.write(to: path, tensors: tensors, metadata: nil)
        defer { unlink(path) }
        return try SafetensorsFile(path: path)
    }
}
