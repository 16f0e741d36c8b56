/// PyTorch `nn.Linear`: y = x Wᵀ + b.
public struct Linear: Sendable {
    public let weight: Parameter   // (out, in)
    public let bias: Parameter?    // (out,)
    public let inFeatures: Int
    public let outFeatures: Int

    public init(_ w: WeightScope, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try w.parameter("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try w.parameter("bias", shape: [outFeatures]) : nil
    }

    /// Reads in/out sizes from the checkpoint (for layers whose size the config does not state).
    public init(_ w: WeightScope, bias hasBias: Bool = true) throws {
        guard let shape = w.shape(of: "weight"), shape.count == 2 else {
            throw RunnerError.missingWeight(key: w.key("weight"), source: w.store.name)
        }
        try self.init(w, in: shape[1], out: shape[0], bias: hasBias)
    }

    /// x: [..., in] → [..., out]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear \(weight.key): input \(x.shape), expected last dim \(inFeatures)")
        return weight.withFloats { w in
            if let bias {
                return bias.withFloats { b in Kernels.linear(x, weight: w, bias: b, outFeatures: outFeatures) }
            }
            return Kernels.linear(x, weight: w, bias: nil, outFeatures: outFeatures)
        }
    }
}
