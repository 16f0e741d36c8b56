import CKernels

/// The int8 matmul of `--compute int8` (CKernels/Int8Matmul.c): `y = x · wᵀ + bias` with x quantized at each call
/// per row and per group of columns (scale = max |x| / 127), w signed bytes with one scale per block of
/// `scaleRows` rows × `group` columns (the int8 blockwise layout `convert` writes, or finer), integer sums per
/// group on AVX-512 VNNI where the processor has it and in portable C otherwise (the same values), float32 across
/// groups.
public enum Int8Matmul {
    /// Whether the VNNI loops run here (for reports).
    public static var vectorized: Bool { eaw_kernels_use_vnni() != 0 }

    /// How a weight's bytes and scales are laid out.
    public struct Layout: Sendable, Equatable {
        /// Output features (w's rows) and input features (its columns).
        public let rows: Int
        public let columns: Int
        /// Bytes from one row to the next (at least `columns` rounded up to 4).
        public let rowStride: Int
        /// Columns per scale group, a multiple of 4 (the last group may be shorter).
        public let group: Int
        /// Rows sharing one scale per group (1: a scale per row).
        public let scaleRows: Int

        public init(rows: Int, columns: Int, rowStride: Int, group: Int, scaleRows: Int) {
            precondition(rows > 0 && columns > 0 && rowStride >= (columns + 3) / 4 * 4, "int8 weight layout")
            precondition(group > 0 && group % 4 == 0 && scaleRows > 0, "int8 weight groups")
            (self.rows, self.columns, self.rowStride, self.group, self.scaleRows) = (rows, columns, rowStride, group, scaleRows)
        }

        public var groups: Int { (columns + group - 1) / group }
        public var scaleCount: Int { (rows + scaleRows - 1) / scaleRows * groups }
    }

    /// `128 · Σ w` per row and group, which the matmul takes off its unsigned-by-signed integer sums.
    public static func weightSums(_ bytes: UnsafeRawBufferPointer, layout: Layout) -> [Int32] {
        precondition(bytes.count >= (layout.rows - 1) * layout.rowStride + layout.columns, "int8 weight bytes")
        var sums = [Int32](repeating: 0, count: layout.rows * layout.groups)
        sums.withUnsafeMutableBufferPointer { out in
            let out = out
            parallelChunks(layout.rows, minimumChunk: max(1, (1 << 18) / layout.columns)) { rows in
                eaw_int8_weight_sums(bytes.baseAddress!.assumingMemoryBound(to: Int8.self) + rows.lowerBound * layout.rowStride,
                                     rows.count, layout.columns, layout.rowStride, layout.group,
                                     out.baseAddress! + rows.lowerBound * layout.groups)
            }
        }
        return sums
    }

    /// `y[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n])` for the `rows` rows of x (row-major, `layout.columns` wide)
    /// into y (`rows` × `layout.rows`). `portable` runs the portable loops whatever the processor (for tests).
    public static func multiply(_ x: UnsafeBufferPointer<Float>, rows: Int, weight bytes: UnsafeRawBufferPointer,
                                layout: Layout, scales: UnsafeBufferPointer<Float>, sums: UnsafeBufferPointer<Int32>,
                                bias: UnsafeBufferPointer<Float>?, into y: UnsafeMutableBufferPointer<Float>,
                                portable: Bool = false) {
        let (k, n) = (layout.columns, layout.rows)
        precondition(x.count == rows * k && y.count == rows * n, "int8 matmul: x \(x.count), y \(y.count) for \(rows)×\(k)·\(n)")
        precondition(bytes.count >= (n - 1) * layout.rowStride + (k + 3) / 4 * 4, "int8 matmul: weight bytes")
        precondition(scales.count == layout.scaleCount && sums.count == n * layout.groups, "int8 matmul: scales or sums")
        precondition(bias.map { $0.count == n } ?? true, "int8 matmul: bias")
        guard rows > 0 else { return }
        let vectors = (rows + 15) / 16
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: eaw_int8_packed_bytes(rows, k), alignment: 64)
        let rowScales = UnsafeMutableBufferPointer<Float>.allocate(capacity: eaw_int8_packed_scales(rows, k, layout.group))
        defer { packed.deallocate(); rowScales.deallocate() }
        let packedBytes = packed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        parallelChunks(vectors, minimumChunk: max(1, (1 << 16) / (16 * k))) { chunk in
            let (begin, end) = (chunk.lowerBound * 16, chunk.upperBound * 16)
            if portable {
                eaw_int8_quantize_rows_portable(x.baseAddress!, rows, k, k, layout.group, begin, end, packedBytes, rowScales.baseAddress!)
            } else {
                eaw_int8_quantize_rows(x.baseAddress!, rows, k, k, layout.group, begin, end, packedBytes, rowScales.baseAddress!)
            }
        }
        let w = bytes.baseAddress!.assumingMemoryBound(to: Int8.self)
        // Output columns split over the cores in multiples of 4 (one tile's width); small products stay on one.
        let quads = (n + 3) / 4
        parallelChunks(quads, minimumChunk: max(1, (1 << 22) / max(1, rows * k * 4))) { chunk in
            let (begin, end) = (chunk.lowerBound * 4, min(n, chunk.upperBound * 4))
            if portable {
                eaw_int8_gemm_portable(packedBytes, rowScales.baseAddress!, rows, k, layout.group, w, layout.rowStride,
                                       scales.baseAddress!, layout.scaleRows, sums.baseAddress!, bias?.baseAddress,
                                       y.baseAddress!, n, begin, end)
            } else {
                eaw_int8_gemm(packedBytes, rowScales.baseAddress!, rows, k, layout.group, w, layout.rowStride,
                              scales.baseAddress!, layout.scaleRows, sums.baseAddress!, bias?.baseAddress,
                              y.baseAddress!, n, begin, end)
            }
        }
    }
}
