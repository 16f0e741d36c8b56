/// PyTorch `nn.LayerNorm` over the last dimension; without affine parameters when the checkpoint has none.
public struct LayerNorm: Sendable {
    public let weight: Parameter?
    public let bias: Parameter?
    public let size: Int
    public let eps: Float

    public init(_ w: WeightScope, size: Int, eps: Float = 1e-5, affine: Bool = true) throws {
        self.size = size
        self.eps = eps
        weight = affine ? try w.parameter("weight", shape: [size]) : nil
        bias = affine ? try w.parameter("bias", shape: [size]) : nil
    }

    /// A LayerNorm with no parameters (`elementwise_affine=False`).
    public init(size: Int, eps: Float = 1e-5) {
        self.size = size
        self.eps = eps
        weight = nil
        bias = nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        guard let weight, let bias else {
            Kernels.layerNorm(&y, n: size, eps: eps)
            return y
        }
        weight.withFloats { w in bias.withFloats { b in Kernels.layerNorm(&y, n: size, eps: eps, weight: w, bias: b) } }
        return y
    }
}

/// T5's layer norm: RMS scaling with a weight, no mean subtraction, no bias.
public struct RMSNorm: Sendable {
    public let weight: Parameter
    public let size: Int
    public let eps: Float

    public init(_ w: WeightScope, size: Int, eps: Float = 1e-6) throws {
        self.size = size
        self.eps = eps
        weight = try w.parameter("weight", shape: [size])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        weight.withFloats { w in Kernels.rmsNorm(&y, n: size, eps: eps, weight: w) }
        return y
    }
}

/// PyTorch `nn.GroupNorm` on [N, C, ...].
public struct GroupNorm: Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let groups: Int
    public let channels: Int
    public let eps: Float

    public init(_ w: WeightScope, groups: Int, channels: Int, eps: Float = 1e-6) throws {
        self.groups = groups
        self.channels = channels
        self.eps = eps
        weight = try w.parameter("weight", shape: [channels])
        bias = try w.parameter("bias", shape: [channels])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape[1] == channels, "GroupNorm \(weight.key): input \(x.shape), expected \(channels) channels")
        var y = x
        weight.withFloats { w in bias.withFloats { b in Kernels.groupNorm(&y, groups: groups, eps: eps, weight: w, bias: b) } }
        return y
    }
}
