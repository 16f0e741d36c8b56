import Foundation
import EANumerics
import Safetensors

/// The weights a model is built from: one or more state dicts, later ones overriding earlier ones (a motion
/// module over a 2D backbone, LoRA-merged tensors over both), plus owned replacements. It remembers which keys
/// the model bound so unused weights are reported instead of silently ignored.
///
/// Models are built only through `load(ignoring:_:)`, which ends with `requireAllConsumed`: `T5Encoder.load`,
/// `Transformer3D.load` and `VAEDecoder.load` are the only ways to make those models, so no caller can forget
/// the unused-key check.
public final class WeightStore: @unchecked Sendable {
    public let name: String
    private let layers: [StateDict]
    private let replacements: [String: Tensor]
    private var consumed = Set<String>()
    private let lock = NSLock()

    public init(name: String, layers: [StateDict], replacements: [String: Tensor] = [:]) {
        self.name = name
        self.layers = layers
        self.replacements = replacements
    }

    public convenience init(_ dict: StateDict) {
        self.init(name: dict.path, layers: [dict])
    }

    public var root: WeightScope { WeightScope(store: self, prefix: "", compute: .f32) }

    public func scope(_ prefix: String) -> WeightScope { root.scope(prefix) }

    /// Every key the store offers.
    public var allKeys: Set<String> {
        var keys = Set(replacements.keys)
        for layer in layers { keys.formUnion(layer.keys) }
        return keys
    }

    public func contains(_ key: String) -> Bool {
        replacements[key] != nil || layers.contains { $0.contains(key) }
    }

    public func shape(of key: String) -> [Int]? {
        if let t = replacements[key] { return t.shape }
        for layer in layers.reversed() { if let info = layer.info(key) { return info.shape } }
        return nil
    }

    /// The weight `key`, checked against `shape` when given.
    public func parameter(_ key: String, shape expected: [Int]? = nil) throws -> Parameter {
        let parameter: Parameter
        if let t = replacements[key] {
            parameter = Parameter(key: key, tensor: t)
        } else if let layer = layers.last(where: { $0.contains(key) }) {
            let view = try layer.tensor(key)
            if layer.contains(key + "_scale") {
                parameter = try quantizedParameter(key, view: view, layer: layer)
            } else {
                guard view.dtype.isFloatingPoint else {
                    throw RunnerError.unsupportedWeightType(key: key, source: layer.path, dtype: view.dtype.rawValue)
                }
                parameter = Parameter(key: key, view: view)
            }
        } else {
            throw RunnerError.missingWeight(key: key, source: name)
        }
        if let expected, parameter.shape != expected {
            throw RunnerError.shapeMismatch(key: key, source: name, expected: expected, actual: parameter.shape)
        }
        markConsumed(key)
        return parameter
    }

    /// A weight stored quantized as `ea-weights convert` writes it: `<key>` I8 or F8_E4M3 beside a F32
    /// `<key>_scale` (one scale per square block, or one for the tensor).
    private func quantizedParameter(_ key: String, view: TensorView, layer: any StateDict) throws -> Parameter {
        let scaleView = try layer.tensor(key + "_scale")
        let scale = scaleView.toFloat32()
        switch view.dtype {
        case .i8:
            let rows = view.shape.first ?? 1
            let columns = rows > 0 ? view.elementCount / rows : 0
            guard scaleView.shape.count == 2, scaleView.shape[0] > 0, rows % scaleView.shape[0] == 0,
                  scaleView.shape[1] > 0, columns % scaleView.shape[1] == 0,
                  rows / scaleView.shape[0] == columns / scaleView.shape[1] else {
                throw RunnerError.invalidConfig(path: layer.path, reason: "int8 weight '\(key)' \(view.shape) has a weight_scale of shape \(scaleView.shape), which is not one scale per square block")
            }
            markConsumed(key + "_scale")
            return Parameter(key: key, quantized: view, scale: scale, groupSize: rows / scaleView.shape[0])
        case .f8e4m3, .f8e5m2:
            guard scale.count == 1 else {
                throw RunnerError.invalidConfig(path: layer.path, reason: "fp8 weight '\(key)' needs a scalar weight_scale, found shape \(scaleView.shape)")
            }
            markConsumed(key + "_scale")
            return Parameter(key: key, quantized: view, scale: scale, groupSize: nil)
        default:
            throw RunnerError.unsupportedWeightType(key: key, source: layer.path, dtype: view.dtype.rawValue + " with a weight_scale")
        }
    }

    private func markConsumed(_ key: String) {
        lock.lock(); defer { lock.unlock() }
        consumed.insert(key)
    }

    /// Keys present but never bound, minus those `ignoring` accepts (e.g. buffers the model recomputes).
    public func unusedKeys(ignoring: (String) -> Bool = { _ in false }) -> [String] {
        lock.lock(); defer { lock.unlock() }
        return allKeys.subtracting(consumed).filter { !ignoring($0) }.sorted()
    }

    /// Throws when the model left weights unbound: an unexpected key means a wrong or mismatched checkpoint.
    public func requireAllConsumed(ignoring: (String) -> Bool = { _ in false }) throws {
        let unused = unusedKeys(ignoring: ignoring)
        guard unused.isEmpty else { throw RunnerError.unexpectedWeights(source: name, keys: unused) }
    }

    /// The one loading path of every model: OpenBLAS is checked first (a missing library is a one-line error
    /// before any compute), `bind` takes the model's weights from the root scope, and then every key it left
    /// unbound is an error unless `ignoring` accepts it (weights a model leaves out on purpose, named by it).
    /// `compute` is how the model's Linear layers multiply (see `WeightScope.compute`).
    func load<Model>(ignoring: (String) -> Bool = { _ in false }, compute: ComputePrecision = .f32,
                     _ bind: (WeightScope) throws -> Model) throws -> Model {
        try BLAS.ensureAvailable()
        let model = try bind(WeightScope(store: self, prefix: "", compute: compute))
        try requireAllConsumed(ignoring: ignoring)
        return model
    }
}

/// A view of a `WeightStore` under a key prefix, the way the checkpoint nests modules
/// (`scope("transformer_blocks").scope("0").parameter("attn1.to_q.weight")`).
public struct WeightScope: Sendable {
    public let store: WeightStore
    public let prefix: String
    /// How the Linear layers bound under this scope multiply: `.int8` quantizes their weights at load (or reads
    /// an int8 file's bytes in place) for the int8 matmul.
    public let compute: ComputePrecision

    public func scope(_ name: String) -> WeightScope {
        WeightScope(store: store, prefix: prefix + name + ".", compute: compute)
    }

    public func scope(_ index: Int) -> WeightScope { scope(String(index)) }

    public func key(_ name: String) -> String { prefix + name }

    public func contains(_ name: String) -> Bool { store.contains(prefix + name) }

    public func shape(of name: String) -> [Int]? { store.shape(of: prefix + name) }

    public func parameter(_ name: String, shape: [Int]? = nil) throws -> Parameter {
        try store.parameter(prefix + name, shape: shape)
    }

    public func optionalParameter(_ name: String, shape: [Int]? = nil) throws -> Parameter? {
        contains(name) ? try parameter(name, shape: shape) : nil
    }
}
