/// PyTorch `nn.Linear`: y = x Wᵀ + b.
public struct Linear: Sendable {
    public let weight: Parameter   // (out, in)
    public let bias: Parameter?    // (out,)
    public let inFeatures: Int
    public let outFeatures: Int
    /// The weight as the int8 matmul reads it, when the scope computes in int8 and the shape allows it.
    let int8: Int8Weight?

    public init(_ w: WeightScope, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try w.parameter("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try w.parameter("bias", shape: [outFeatures]) : nil
        int8 = w.compute == .int8 ? Int8Weight(weight) : nil
    }

    /// x: [..., in] → [..., out]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear \(weight.key): input \(x.shape), expected last dim \(inFeatures)")
        if let int8 { return int8.multiply(x, bias: bias) }
        return weight.withFloats { w in
            if let bias {
                return bias.withFloats { b in Kernels.linear(x, weight: w, bias: b, outFeatures: outFeatures) }
            }
            return Kernels.linear(x, weight: w, bias: nil, outFeatures: outFeatures)
        }
    }
}
