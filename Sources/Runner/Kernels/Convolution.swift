import WeightOps

extension Kernels {
    /// 2D convolution of [N, Cin, H, W] with a PyTorch-layout weight [Cout, Cin, kh, kw], as im2col + GEMM.
    public static func conv2d(_ x: Tensor, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                              outChannels: Int, kernel: (Int, Int), stride: Int = 1, padding: Int = 0) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = kernel
        let oh = (h + 2 * padding - kh) / stride + 1
        let ow = (w + 2 * padding - kw) / stride + 1
        precondition(weight.count == outChannels * cin * kh * kw, "conv2d: weight size")
        var out = Tensor(zeros: [n, outChannels, oh, ow])
        let cols = cin * kh * kw, pixels = oh * ow
        guard n > 0, pixels > 0 else { return out }
        let pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0
        var columns = [Float](repeating: 0, count: pointwise ? 0 : cols * pixels)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                columns.withUnsafeMutableBufferPointer { colBuffer in
                    let (src, dst, colBuffer) = (src, dst, colBuffer)
                    for b in 0..<n {
                        let image = src.baseAddress! + b * cin * h * w
                        let input: UnsafePointer<Float>
                        if pointwise {
                            input = image
                        } else {
                            // Row (c, ky, kx) of the column matrix holds that tap for every output pixel.
                            parallelFor(cin) { c in
                                for ky in 0..<kh {
                                    for kx in 0..<kw {
                                        let row = colBuffer.baseAddress! + ((c * kh + ky) * kw + kx) * pixels
                                        for oy in 0..<oh {
                                            let iy = oy * stride - padding + ky
                                            let dstRow = row + oy * ow
                                            if iy < 0 || iy >= h {
                                                for ox in 0..<ow { dstRow[ox] = 0 }
                                                continue
                                            }
                                            let srcRow = image + (c * h + iy) * w
                                            for ox in 0..<ow {
                                                let ix = ox * stride - padding + kx
                                                dstRow[ox] = (ix >= 0 && ix < w) ? srcRow[ix] : 0
                                            }
                                        }
                                    }
                                }
                            }
                            input = UnsafePointer(colBuffer.baseAddress!)
                        }
                        BLAS.sgemm(.none, .none, m: outChannels, n: pixels, k: cols,
                                   a: weight.baseAddress!, lda: cols, b: input, ldb: pixels,
                                   c: dst.baseAddress! + b * outChannels * pixels, ldc: pixels)
                    }
                }
            }
        }
        if let bias {
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    for o in 0..<outChannels {
                        let p = dst.baseAddress! + (b * outChannels + o) * pixels
                        let v = bias[o]
                        for i in 0..<pixels { p[i] += v }
                    }
                }
            }
        }
        return out
    }
}
