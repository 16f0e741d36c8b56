import EANumerics

extension Kernels {
    /// Upper bound on the im2col buffer (floats). Whole-image columns would be huge (a 3×3 conv with 512 input
    /// channels on a 256×256 image needs 1.2 GB), so output rows are processed in bands whose columns stay
    /// in cache between im2col writing them and sgemm reading them: measured on the SD VAE's convolutions,
    /// 8 MB bands ran up to 2× faster than 64 MB ones (the 128-channel 512×512 layers gain most).
    static let im2colBudget = 2 << 20

    /// 2D convolution of [N, Cin, H, W] with a PyTorch-layout weight [Cout, Cin, kh, kw], as im2col + GEMM.
    public static func conv2d(_ x: Tensor, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                              outChannels: Int, kernel: (Int, Int), stride: Int = 1, padding: Int = 0) -> Tensor {
        conv2d(x, weight: weight, bias: bias, outChannels: outChannels, kernel: kernel, stride: stride, padding: padding,
               columnBudget: im2colBudget)
    }

    /// `columnBudget` (floats) bounds the im2col buffer; tests lower it to exercise the banding.
    static func conv2d(_ x: Tensor, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                       outChannels: Int, kernel: (Int, Int), stride: Int, padding: Int, columnBudget: Int) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = kernel
        let oh = (h + 2 * padding - kh) / stride + 1
        let ow = (w + 2 * padding - kw) / stride + 1
        precondition(weight.count == outChannels * cin * kh * kw, "conv2d: weight size")
        // Every output element is written: by the bias fill then sgemm (beta 1), or by sgemm alone (beta 0).
        var out = Tensor(uninitialized: [n, outChannels, max(0, oh), max(0, ow)])
        let cols = cin * kh * kw, pixels = oh * ow
        guard n > 0, oh > 0, ow > 0 else { return out }
        let pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0
        let bandRows = pointwise ? oh : max(1, min(oh, columnBudget / max(1, cols * ow)))
        let columnCount = pointwise ? 0 : cols * bandRows * ow
        // Every element is written by im2col before sgemm reads it, so the buffer starts uninitialized.
        var columns = Tensor(uninitialized: [columnCount])
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                columns.withUnsafeMutableBufferPointer { colBuffer in
                    let (src, dst, colBuffer) = (src, dst, colBuffer)
                    // The bias is written first and sgemm accumulates onto it (beta = 1).
                    if let bias { fillChannels(dst, with: bias, planes: n * outChannels, channels: outChannels, pixels: pixels) }
                    let beta: Float = bias == nil ? 0 : 1
                    for b in 0..<n {
                        let image = src.baseAddress! + b * cin * h * w
                        let result = dst.baseAddress! + b * outChannels * pixels
                        if pointwise {
                            BLAS.sgemm(.none, .none, m: outChannels, n: pixels, k: cols,
                                       a: weight.baseAddress!, lda: cols, b: image, ldb: pixels,
                                       beta: beta, c: result, ldc: pixels)
                            continue
                        }
                        var firstRow = 0
                        while firstRow < oh {
                            let rows = min(bandRows, oh - firstRow)
                            let bandPixels = rows * ow
                            im2col(image: image, channels: cin, height: h, width: w, kernel: kernel, stride: stride,
                                   padding: padding, outWidth: ow, rows: firstRow..<(firstRow + rows),
                                   into: colBuffer.baseAddress!)
                            // C is the band's columns of the [Cout, pixels] output: row stride stays `pixels`.
                            BLAS.sgemm(.none, .none, m: outChannels, n: bandPixels, k: cols,
                                       a: weight.baseAddress!, lda: cols, b: colBuffer.baseAddress!, ldb: bandPixels,
                                       beta: beta, c: result + firstRow * ow, ldc: pixels)
                            firstRow += rows
                        }
                    }
                }
            }
        }
        return out
    }

    /// Writes `values[c]` over every pixel of channel plane c (planes are [N·C] consecutive runs of `pixels`).
    private static func fillChannels(_ dst: UnsafeMutableBufferPointer<Float>, with values: UnsafeBufferPointer<Float>,
                                     planes: Int, channels: Int, pixels: Int) {
        parallelChunks(planes, minimumChunk: max(1, 65536 / pixels)) { range in
            for plane in range {
                (dst.baseAddress! + plane * pixels).update(repeating: values[plane % channels], count: pixels)
            }
        }
    }

    /// The column matrix of output rows `rows`: row (c, ky, kx) holds that tap for every pixel of the band,
    /// zero where the tap falls into the padding.
    private static func im2col(image: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int,
                               kernel: (Int, Int), stride: Int, padding: Int, outWidth ow: Int, rows: Range<Int>,
                               into columns: UnsafeMutablePointer<Float>) {
        let (kh, kw) = kernel
        let bandPixels = rows.count * ow
        let perChannel = kh * kw * bandPixels
        parallelChunks(channels, minimumChunk: max(1, 65536 / max(1, perChannel))) { channelRange in
            for c in channelRange {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let tap = columns + ((c * kh + ky) * kw + kx) * bandPixels
                        // Output columns whose input column lies inside the image.
                        let firstValid = min(ow, max(0, (padding - kx + stride - 1) / stride))
                        let lastValid = min(ow, max(firstValid, (w + padding - kx + stride - 1) / stride))
                        for (i, oy) in rows.enumerated() {
                            let dstRow = tap + i * ow
                            let iy = oy * stride - padding + ky
                            guard iy >= 0 && iy < h else {
                                dstRow.update(repeating: 0, count: ow)
                                continue
                            }
                            let srcRow = image + (c * h + iy) * w
                            dstRow.update(repeating: 0, count: firstValid)
                            if stride == 1 {
                                (dstRow + firstValid).update(from: srcRow + (firstValid - padding + kx),
                                                             count: lastValid - firstValid)
                            } else {
                                for ox in firstValid..<lastValid { dstRow[ox] = srcRow[ox * stride - padding + kx] }
                            }
                            (dstRow + lastValid).update(repeating: 0, count: ow - lastValid)
                        }
                    }
                }
            }
        }
    }
}
