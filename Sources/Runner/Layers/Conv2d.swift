/// PyTorch `nn.Conv2d` (square kernel, symmetric padding), as im2col + GEMM.
public struct Conv2d: Sendable {
    public let weight: Parameter   // (out, in, k, k)
    public let bias: Parameter?    // (out,)
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int

    public init(_ w: WeightScope, in inChannels: Int, out outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, bias hasBias: Bool = true) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        weight = try w.parameter("weight", shape: [outChannels, inChannels, kernel, kernel])
        bias = hasBias ? try w.parameter("bias", shape: [outChannels]) : nil
    }

    /// x: [N, in, H, W] → [N, out, H', W']
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape[1] == inChannels, "Conv2d \(weight.key): input \(x.shape), expected \(inChannels) channels")
        return weight.withFloats { w in
            let run = { (b: UnsafeBufferPointer<Float>?) in
                Kernels.conv2d(x, weight: w, bias: b, outChannels: outChannels, kernel: (kernel, kernel),
                               stride: stride, padding: padding)
            }
            if let bias { return bias.withFloats { run($0) } }
            return run(nil)
        }
    }
}
