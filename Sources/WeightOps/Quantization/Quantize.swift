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
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        var amax = [Float](repeating: 0, count: (rows / g) * blockCols)
        for r in 0..<rows {
            let scaleRow = (r / g) * blockCols
            for bj in 0..<blockCols {
                let row = UnsafeBufferPointer(rebasing: w[(r * cols + bj * g)..<(r * cols + (bj + 1) * g)])
                amax[scaleRow + bj] = max(amax[scaleRow + bj], NumericChecks.maxAbs(row))
            }
        }
        return amax.map { max($0 / int8Max, minimumScale) }
    }

    /// `w`: (rows, cols) row-major; both divisible by `groupSize`.
    public static func int8Blockwise(_ w: [Float], rows: Int, cols: Int, groupSize g: Int) -> QuantizedWeight {
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        let scales = w.withUnsafeBufferPointer { int8BlockScales($0, rows: rows, cols: cols, groupSize: g) }
        var q = [UInt8](repeating: 0, count: w.count)
        var maxErr: Float = 0
        var errSquares: Double = 0, normSquares: Double = 0
        w.withUnsafeBufferPointer { w in
            q.withUnsafeMutableBufferPointer { q in
                for r in 0..<rows {
                    let scaleRow = (r / g) * blockCols
                    for c in 0..<cols {
                        let scale = scales[scaleRow + c / g]
                        let x = w[r * cols + c]
                        let i = Int8(min(max(x / scale, -int8Max), int8Max).rounded(.toNearestOrEven))
                        q[r * cols + c] = UInt8(bitPattern: i)
                        let e = abs(x - Float(i) * scale)
                        maxErr = max(maxErr, e)
                        errSquares += Double(e) * Double(e)
                        normSquares += Double(x) * Double(x)
                    }
                }
            }
        }
        return QuantizedWeight(format: .int8Blockwise, data: q, shape: [rows, cols], scale: scales,
                               scaleShape: [rows / g, blockCols], groupSize: g,
                               error: error(maxErr, errSquares, normSquares))
    }

    /// The scalar fp8 scale: absmax / 448, or 1 for an all-zero weight (a zero scale would make 1/scale infinite).
    public static func float8Scale(_ w: UnsafeBufferPointer<Float>) -> Float {
        let amax = NumericChecks.maxAbs(w)
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
    public static func float8E4M3(_ w: [Float], shape: [Int]) throws -> QuantizedWeight {
        let scale = w.withUnsafeBufferPointer { float8Scale($0) }
        let inverse = 1 / scale
        // Clamped first: e4m3fn has no infinity, values past 464 would round to NaN.
        let scaled = w.map { min(max($0 * inverse, -float8E4M3Max), float8E4M3Max) }
        var q = [UInt8](repeating: 0, count: w.count)
        try scaled.withUnsafeBufferPointer { s in
            try q.withUnsafeMutableBytes { _ = try DTypeConversion.encode(s, as: .f8e4m3, into: $0) }
        }
        var back = [Float](repeating: 0, count: w.count)
        q.withUnsafeBytes { raw in back.withUnsafeMutableBufferPointer { DTypeConversion.decode(raw, dtype: .f8e4m3, into: $0) } }
        var maxErr: Float = 0
        var errSquares: Double = 0, normSquares: Double = 0
        for i in w.indices {
            let e = abs(w[i] - back[i] * scale)
            maxErr = max(maxErr, e)
            errSquares += Double(e) * Double(e)
            normSquares += Double(w[i]) * Double(w[i])
        }
        return QuantizedWeight(format: .float8E4M3FN, data: q, shape: shape, scale: [scale], scaleShape: [],
                               groupSize: nil, error: error(maxErr, errSquares, normSquares))
    }

    /// Dequantizes an fp8 weight: `float(q) * scale`.
    public static func dequantizeFloat8E4M3(_ q: [UInt8], scale: Float) -> [Float] {
        var out = [Float](repeating: 0, count: q.count)
        q.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { DTypeConversion.decode(raw, dtype: .f8e4m3, into: $0) } }
        for i in out.indices { out[i] *= scale }
        return out
    }

    static func error(_ maxErr: Float, _ errSquares: Double, _ normSquares: Double) -> QuantizationError {
        QuantizationError(maxAbs: maxErr, relative: normSquares > 0 ? Float((errSquares / normSquares).squareRoot()) : 0)
    }
}
