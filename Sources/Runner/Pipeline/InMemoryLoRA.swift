import Safetensors
import WeightOps

/// `--lora` for generation: EasyAnimate's `merge_lora(pipeline, path, multiplier)` applied to the loaded
/// weights in memory, through the same plan and float32 math as `ea-weights merge-lora`.
public enum InMemoryLoRA {
    /// The merged tensors of each component (key → float32 result), to be layered over the checkpoints.
    public struct Merged: Sendable {
        public var transformer: [String: Tensor] = [:]
        public var textEncoder: [String: Tensor] = [:]
        public var report: LoRAMergeReport
    }

    public static func merge(_ specs: [LoRASpec], transformer: any StateDict, textEncoder: any StateDict) throws -> Merged {
        let files = try specs.map { try LoRAFile(path: $0.path) }
        let plan = LoRAMergePlan(components: [("transformer", transformer, .transformer),
                                              ("text_encoder", textEncoder, .textEncoder)],
                                 loras: files, specs: specs)
        try plan.validate(strict: false)
        var merged = Merged(report: plan.report)
        for component in plan.components {
            for (key, applications) in component.updates {
                let view = try component.base.tensor(key)
                var values = view.toFloat32()
                try values.withUnsafeMutableBufferPointer { try plan.apply(applications, to: $0, tensor: key) }
                let tensor = Tensor(shape: view.shape, storage: values)
                if component.target == .transformer { merged.transformer[key] = tensor } else { merged.textEncoder[key] = tensor }
            }
        }
        return merged
    }
}
