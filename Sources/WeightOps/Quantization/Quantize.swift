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
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        var scales = [Float](repeating: 0, count: (rows / g) * blockCols)
        scales.withUnsafeMutableBufferPointer { scales in
            let scales = scales
            parallelFor(rows / g) { br in
                for bj in 0..<blockCols {
                    var amax: Float = 0
                    for r in (br * g)..<((br + 1) * g) {
                        amax = max(amax, NumericChecks.maxAbs(UnsafeBufferPointer(rebasing: w[(r * cols + bj * g)..<(r * cols + (bj + 1) * g)])))
                    }
                    scales[br * blockCols + bj] = max(amax / int8Max, minimumScale)
                }
            }
        }
        return scales
    }

    /// `w`: (rows, cols) row-major; both divisible by `groupSize`.
    public static func int8Blockwise(_ w: [Float], rows: Int, cols: Int, groupSize g: Int) -> QuantizedWeight {
        w.withUnsafeBufferPointer { int8Blockwise($0, rows: rows, cols: cols, groupSize: g) }
    }

    /// `w`: (rows, cols) row-major; both divisible by `groupSize`. Block rows run on all cores; the inner loop is
    /// branch-free so it vectorizes.
    public static func int8Blockwise(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, groupSize g: Int) -> QuantizedWeight {
        precondition(w.count == rows * cols && rows % g == 0 && cols % g == 0, "int8 blockwise needs whole blocks")
        let blockCols = cols / g
        let scales = int8BlockScales(w, rows: rows, cols: cols, groupSize: g)
        var q = [UInt8](repeating: 0, count: w.count)
        var partial = [ErrorSums](repeating: ErrorSums(), count: rows / g)
        q.withUnsafeMutableBufferPointer { q in
            partial.withUnsafeMutableBufferPointer { partial in
                let (q, partial) = (q, partial)
                parallelFor(rows / g) { br in
                    var sums = ErrorSums()
                    for r in (br * g)..<((br + 1) * g) {
                        var rowMax: Float = 0, rowErr: Float = 0, rowNorm: Float = 0
                        for bj in 0..<blockCols {
                            let scale = scales[br * blockCols + bj]
                            for c in (r * cols + bj * g)..<(r * cols + (bj + 1) * g) {
                                let x = w[c]
                                // x / scale clamped, rounded half to even by adding 1.5 × 2^23 (exact for |y| ≤ 127):
                                // the sum's low byte is then the int8's two's complement.
                                let shifted = min(max(x / scale, -int8Max), int8Max) + roundingShift
                                q[c] = UInt8(truncatingIfNeeded: shifted.bitPattern)
                                let e = abs(x - (shifted - roundingShift) * scale)
                                rowMax = max(rowMax, e)
                                rowErr += e * e
                                rowNorm += x * x
                            }
                        }
                        sums.add(maxError: rowMax, errorSquares: rowErr, normSquares: rowNorm)
                    }
                    partial[br] = sums
                }
            }
        }
        let total = partial.reduce(into: ErrorSums()) { $0.add($1) }
        return QuantizedWeight(format: .int8Blockwise, data: q, shape: [rows, cols], scale: scales,
                               scaleShape: [rows / g, blockCols], groupSize: g, error: total.error)
    }

    /// 1.5 × 2^23: adding it rounds a float of magnitude below 2^22 to the nearest integer, ties to even.
    private static let roundingShift: Float = 12_582_912

    /// Error statistics of part of a weight: float sums per row, double across rows.
    struct ErrorSums {
        var maxError: Float = 0
        var errorSquares: Double = 0
        var normSquares: Double = 0

        mutating func add(maxError m: Float, errorSquares e: Float, normSquares n: Float) {
            maxError = max(maxError, m)
            errorSquares += Double(e)
            normSquares += Double(n)
        }

        mutating func add(_ other: ErrorSums) {
            maxError = max(maxError, other.maxError)
            errorSquares += other.errorSquares
            normSquares += other.normSquares
        }

        var error: QuantizationError { Quantizer.error(maxError, errorSquares, normSquares) }
    }

    /// The scalar fp8 scale: absmax / 448, or 1 for an all-zero weight (a zero scale would make 1/scale infinite).
    public static func float8Scale(_ w: UnsafeBufferPointer<Float>) -> Float {
        var partial = [Float](repeating: 0, count: ProcessInfoCache.activeProcessorCount)
        let chunk = (w.count + partial.count - 1) / max(partial.count, 1)
        partial.withUnsafeMutableBufferPointer { partial in
            let partial = partial
            parallelFor(partial.count) { i in
                let range = min(w.count, i * chunk)..<min(w.count, (i + 1) * chunk)
                partial[i] = NumericChecks.maxAbs(UnsafeBufferPointer(rebasing: w[range]))
            }
        }
        let amax = partial.max() ?? 0
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
        try w.withUnsafeBufferPointer { try float8E4M3($0, shape: shape) }
    }

    /// `w`: any shape (stored as is); one scalar scale. Chunks of 64 K elements run on all cores, each scaled,
    /// encoded and decoded again (for the error) in a small buffer.
    public static func float8E4M3(_ w: UnsafeBufferPointer<Float>, shape: [Int]) throws -> QuantizedWeight {
        let scale = float8Scale(w)
        let inverse = 1 / scale
        let chunk = 1 << 16
        let chunks = (w.count + chunk - 1) / chunk
        var q = [UInt8](repeating: 0, count: w.count)
        var partial = [ErrorSums](repeating: ErrorSums(), count: chunks)
        var failure: Error?
        let lock = NSLock()
        q.withUnsafeMutableBytes { q in
            partial.withUnsafeMutableBufferPointer { partial in
                let (q, partial) = (q, partial)
                parallelFor(chunks) { i in
                    let range = (i * chunk)..<min(w.count, (i + 1) * chunk)
                    var scaled = [Float](repeating: 0, count: range.count)
                    for (j, k) in range.enumerated() {
                        // Clamped first: e4m3fn has no infinity, values past 464 would round to NaN.
                        scaled[j] = min(max(w[k] * inverse, -float8E4M3Max), float8E4M3Max)
                    }
                    let bytes = UnsafeMutableRawBufferPointer(rebasing: q[range])
                    do {
                        _ = try scaled.withUnsafeBufferPointer { try DTypeConversion.encode($0, as: .f8e4m3, into: bytes) }
                    } catch {
                        lock.withLock { failure = error }
                        return
                    }
                    scaled.withUnsafeMutableBufferPointer { DTypeConversion.decode(UnsafeRawBufferPointer(bytes), dtype: .f8e4m3, into: $0) }
                    var sums = ErrorSums()
                    var maxErr: Float = 0, errSquares: Float = 0, normSquares: Float = 0
                    for (j, k) in range.enumerated() {
                        let e = abs(w[k] - scaled[j] * scale)
                        maxErr = max(maxErr, e)
                        errSquares += e * e
                        normSquares += w[k] * w[k]
                    }
                    sums.add(maxError: maxErr, errorSquares: errSquares, normSquares: normSquares)
                    partial[i] = sums
                }
            }
        }
        if let failure { throw failure }
        let total = partial.reduce(into: ErrorSums()) { $0.add($1) }
        return QuantizedWeight(format: .float8E4M3FN, data: q, shape: shape, scale: [scale], scaleShape: [],
                               groupSize: nil, error: total.error)
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
