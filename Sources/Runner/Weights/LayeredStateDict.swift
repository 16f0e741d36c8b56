import Safetensors

/// State dicts loaded one over another, later ones winning on repeated keys: how EasyAnimate builds its 3D
/// transformer (diffusers weights, then a personalized checkpoint, then the motion module, each loaded
/// non-strictly over the last).
public struct LayeredStateDict: StateDict {
    public let layers: [any StateDict]
    public let path: String
    public let keys: [String]

    public init(_ layers: [any StateDict]) {
        self.layers = layers
        path = layers.map(\.path).joined(separator: " + ")
        keys = Set(layers.flatMap(\.keys)).sorted()
    }

    public var metadata: [String: String] { layers.last?.metadata ?? [:] }

    public func info(_ name: String) -> TensorInfo? {
        for layer in layers.reversed() { if let info = layer.info(name) { return info } }
        return nil
    }

    public func tensor(_ name: String) throws -> TensorView {
        guard let layer = layers.last(where: { $0.contains(name) }) else {
            throw SafetensorsError.tensorNotFound(path: path, tensor: name)
        }
        return try layer.tensor(name)
    }
}
