import Foundation
import EANumerics
import Safetensors

/// A weight quantized to one of the `QuantizationFormat`s, ready to store, with its error.
public struct QuantizedWeight: Sendable {
    public let format: QuantizationFormat
    /// The stored weight: I8 or F8_E4M3 bytes, same shape as the original.
    public let data: [UInt8]
    public let shape: [Int]
    /// F32 `weight_scale`: (N/g, K/g) blocks for int8, a scalar for fp8.
    public let scale: [Float]
    public let scaleShape: [Int]
    public let groupSize: Int?
    public let error: QuantizationError
}

/// How far the dequantized weight is from the original.
public struct QuantizationError: Sendable, Codable, Equatable {
    /// max |w - dequant(q)|
    public let maxAbs: Float
    /// ‖w - dequant(q)‖₂ / ‖w‖₂ (0 for an all-zero weight).
    public let relative: Float

    enum CodingKeys: String, CodingKey { case maxAbs = "max_abs", relative = "rel" }
}

/// Weight-only quantization as ComfyUI's layouts do it (comfy/quant_ops.py):
/// - int8_blockwise: per g×g block, `scale = max(absmax / 127, 1e-8)`, `q = round(clamp(w / scale, -127, 127))`
///   (round half to even, like torch.round); dequantized `q * scale`.
/// - float8_e4m3fn: `scale = absmax / 448`, `q = fp8(clamp(w * (1 / scale), -448, 448))`; dequantized `q * scale`.
public enum Quantizer {
    public static let int8Max: Float = 127
    public static let float8E4M3Max: Float = 448
    /// ComfyUI's floor for block scales, so an all-zero block does not divide by zero.
    public static let minimumScale: Float = 1e-8

    /// Why a weight cannot take `format`, or nil when it can.
    public static func unsupportedReason(shape: [Int], format: QuantizationFormat, groupSize: Int) -> String? {
        guard shape.count == 2 else { return "is not a 2-D Linear weight" }
        if format == .int8Blockwise, shape[0] % groupSize != 0 || shape[1] % groupSize != 0 {
            return "shape \(shape) does not divide into \(groupSize)x\(groupSize) blocks"
        }
        return nil
    }

    /// Per-block scales of a (rows, cols) weight: `max(absmax / 127, 1e-8)`, shape (rows/g, cols/g).
    public static func int8BlockScales(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, groupSize g: Int) -> [Float] {
        inMemory { try int8BlockScales(WeightSource(w), rows: rows, cols: cols, groupSize: g) }
    }

    /// Block rows (g rows of the weight) run on all cores, each row through the vector kernel.
    static func int8BlockScales(_ w: WeightSource, rows: Int, cols: Int, groupSize g: Int) throws -> [Float] {
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        var scales = [Float](repeating: 0, count: (rows / g) * blockCols)
        try scales.withUnsafeMutableBufferPointer { scales in
            let scales = scales
            try w.forEachUnit(rows / g, maxElements: g * cols, elements: { ($0 * g * cols)..<(($0 + 1) * g * cols) }) { br, _, band in
                let blockRow = UnsafeMutableBufferPointer(rebasing: scales[(br * blockCols)..<((br + 1) * blockCols)])
                for r in 0..<g {
                    QuantizationKernels.blockAbsMax(UnsafeBufferPointer(rebasing: band[(r * cols)..<((r + 1) * cols)]), group: g,
                                                    into: blockRow)
                }
                for j in blockRow.indices { blockRow[j] = max(blockRow[j] / int8Max, minimumScale) }
            }
        }
        return scales
    }

    /// `w`: (rows, cols) row-major; both divisible by `groupSize`.
    public static func int8Blockwise(_ w: [Float], rows: Int, cols: Int, groupSize g: Int) -> QuantizedWeight {
        w.withUnsafeBufferPointer { int8Blockwise($0, rows: rows, cols: cols, groupSize: g) }
    }

    /// `w`: (rows, cols) row-major; both divisible by `groupSize`. `scales`, when given, are this weight's
    /// `int8BlockScales` computed before.
    public static func int8Blockwise(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, groupSize g: Int,
                                     scales known: [Float]? = nil) -> QuantizedWeight {
        inMemory { try int8Blockwise(WeightSource(w), rows: rows, cols: cols, groupSize: g, scales: known) }
    }

    /// Block rows run on all cores, each row through the vector kernel.
    static func int8Blockwise(_ w: WeightSource, rows: Int, cols: Int, groupSize g: Int,
                              scales known: [Float]? = nil) throws -> QuantizedWeight {
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        let scales = try known ?? int8BlockScales(w, rows: rows, cols: cols, groupSize: g)
        precondition(scales.count == (rows / g) * blockCols, "int8 blockwise scales")
        var q = [UInt8](repeating: 0, count: w.count)
        var partial = [QuantizationKernels.Error](repeating: .init(), count: rows / g)
        try q.withUnsafeMutableBufferPointer { q in
            try partial.withUnsafeMutableBufferPointer { partial in
                try scales.withUnsafeBufferPointer { scales in
                    let (q, partial) = (q, partial)
                    try w.forEachUnit(rows / g, maxElements: g * cols, elements: { ($0 * g * cols)..<(($0 + 1) * g * cols) }) { br, band, values in
                        var error = QuantizationKernels.Error()
                        let rowScales = UnsafeBufferPointer(rebasing: scales[(br * blockCols)..<((br + 1) * blockCols)])
                        for r in 0..<g {
                            let row = (r * cols)..<((r + 1) * cols)
                            QuantizationKernels.int8Row(UnsafeBufferPointer(rebasing: values[row]), group: g, scales: rowScales,
                                                        into: UnsafeMutableBufferPointer(rebasing: q[(band.lowerBound + row.lowerBound)..<(band.lowerBound + row.upperBound)]),
                                                        error: &error)
                        }
                        partial[br] = error
                    }
                }
            }
        }
        return QuantizedWeight(format: .int8Blockwise, data: q, shape: [rows, cols], scale: scales,
                               scaleShape: [rows / g, blockCols], groupSize: g, error: error(of: partial))
    }

    /// Runs a quantizer on a source in memory, which has no reads to fail.
    private static func inMemory<R>(_ body: () throws -> R) -> R {
        do { return try body() } catch { preconditionFailure("a weight in memory cannot fail to read: \(error)") }
    }

    /// The error of a weight from its parts' sums.
    static func error(of parts: [QuantizationKernels.Error]) -> QuantizationError {
        let maxError = parts.reduce(Float(0)) { max($0, $1.maxError) }
        let errorSquares = parts.reduce(0.0) { $0 + $1.errorSquares }, normSquares = parts.reduce(0.0) { $0 + $1.normSquares }
        return QuantizationError(maxAbs: maxError,
                                 relative: normSquares > 0 ? Float((errorSquares / normSquares).squareRoot()) : 0)
    }

    /// The scalar fp8 scale: absmax / 448, or 1 for an all-zero weight (a zero scale would make 1/scale infinite).
    public static func float8Scale(_ w: UnsafeBufferPointer<Float>) -> Float {
        inMemory { try float8Scale(WeightSource(w)) }
    }

    /// Elements per unit of work of the fp8 passes (256 KB of F32: a worker's copy stays in its core's cache).
    static let float8Chunk = 1 << 16

    static func float8Scale(_ w: WeightSource) throws -> Float {
        let chunk = float8Chunk
        let units = (w.count + chunk - 1) / chunk
        var partial = [Float](repeating: 0, count: units)
        try partial.withUnsafeMutableBufferPointer { partial in
            let partial = partial
            try w.forEachUnit(units, maxElements: chunk, elements: { ($0 * chunk)..<min(w.count, ($0 + 1) * chunk) }) { i, _, values in
                partial[i] = NumericChecks.maxAbs(values)
            }
        }
        // The same bit-pattern maximum over the parts as over the whole (a NaN wins, as in one pass).
        let amax = partial.withUnsafeBufferPointer { NumericChecks.maxAbs($0) }
        return amax > 0 ? amax / float8E4M3Max : 1
    }

    /// Dequantizes an int8 blockwise weight (for error checks, `diff` and the runner).
    public static func dequantizeInt8Blockwise(_ q: [Int8], rows: Int, cols: Int, scale: [Float], groupSize g: Int) -> [Float] {
        precondition(q.count == rows * cols && scale.count == (rows / g) * (cols / g), "int8 blockwise shapes")
        var out = [Float](repeating: 0, count: q.count)
        let blockCols = cols / g
        for r in 0..<rows {
            let scaleRow = (r / g) * blockCols
            for c in 0..<cols { out[r * cols + c] = Float(q[r * cols + c]) * scale[scaleRow + c / g] }
        }
        return out
    }

    /// `w`: any shape (stored as is); one scalar scale.
    public static func float8E4M3(_ w: [Float], shape: [Int]) -> QuantizedWeight {
        w.withUnsafeBufferPointer { float8E4M3($0, shape: shape) }
    }

    /// `w`: any shape (stored as is); one scalar scale. Chunks of 64 K elements run on all cores through the
    /// vector kernel. `scale`, when given, is this weight's `float8Scale` computed before.
    public static func float8E4M3(_ w: UnsafeBufferPointer<Float>, shape: [Int], scale known: Float? = nil) -> QuantizedWeight {
        inMemory { try float8E4M3(WeightSource(w), shape: shape, scale: known) }
    }

    static func float8E4M3(_ w: WeightSource, shape: [Int], scale known: Float? = nil) throws -> QuantizedWeight {
        let scale = try known ?? float8Scale(w)
        let inverse = 1 / scale
        let chunk = float8Chunk
        let chunks = (w.count + chunk - 1) / chunk
        var q = [UInt8](repeating: 0, count: w.count)
        var partial = [QuantizationKernels.Error](repeating: .init(), count: chunks)
        try q.withUnsafeMutableBufferPointer { q in
            try partial.withUnsafeMutableBufferPointer { partial in
                let (q, partial) = (q, partial)
                try w.forEachUnit(chunks, maxElements: chunk, elements: { ($0 * chunk)..<min(w.count, ($0 + 1) * chunk) }) { i, range, values in
                    QuantizationKernels.float8E4M3(values, inverseScale: inverse, scale: scale,
                                                   into: UnsafeMutableBufferPointer(rebasing: q[range]), error: &partial[i])
                }
            }
        }
        return QuantizedWeight(format: .float8E4M3FN, data: q, shape: shape, scale: [scale], scaleShape: [],
                               groupSize: nil, error: error(of: partial))
    }

    /// Dequantizes an fp8 weight: `float(q) * scale`.
    public static func dequantizeFloat8E4M3(_ q: [UInt8], scale: Float) -> [Float] {
        var out = [Float](repeating: 0, count: q.count)
        q.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { DTypeConversion.decode(raw, dtype: .f8e4m3, into: $0) } }
        for i in out.indices { out[i] *= scale }
        return out
    }
}
