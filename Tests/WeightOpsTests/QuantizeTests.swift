import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("Quantization")
struct QuantizeTests {
    /// Deterministic pseudo-random weights with a few outliers, like trained Linear weights.
    static func weights(rows: Int, cols: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<(rows * cols)).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(state >> 40) / Float(1 << 24) - 0.5
            return i % 97 == 0 ? u * 8 : u * 0.2
        }
    }

    @Test("a file's tensor read unit by unit quantizes to the bytes, scales and error of the same values in memory")
    func fileSourceEqualsMemory() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 98,304 elements: two fp8 units of 64 K, the second partial; four int8 block rows of 64; after a tensor of
        // 3 floats, so the weight starts mid-page.
        let (rows, cols, g) = (256, 384, 64)
        let w = Self.weights(rows: rows, cols: cols, seed: 11)
        let path = try SyntheticSafetensors.write([.init(name: "a", shape: [3], values: [1, 2, 3]),
                                                   .init(name: "w", shape: [rows, cols], values: w)],
                                                  to: dir.appendingPathComponent("w.safetensors").path)
        let source = WeightSource(try SafetensorsFile(path: path).tensor("w"))
        let f8File = try Quantizer.float8E4M3(source, shape: [rows, cols]), f8Memory = Quantizer.float8E4M3(w, shape: [rows, cols])
        #expect(f8File.data == f8Memory.data && f8File.scale == f8Memory.scale && f8File.error == f8Memory.error)
        let i8File = try Quantizer.int8Blockwise(source, rows: rows, cols: cols, groupSize: g)
        let i8Memory = Quantizer.int8Blockwise(w, rows: rows, cols: cols, groupSize: g)
        #expect(i8File.data == i8Memory.data && i8File.scale == i8Memory.scale && i8File.error == i8Memory.error)
        #expect(i8File.scaleShape == [rows / g, cols / g] && f8File.scaleShape == [])
    }

    @Test("int8 blockwise: |w - q*scale| <= scale/2 in every block, scales are absmax/127")
    func int8ErrorBound() {
        let rows = 64, cols = 96, g = 32
        let w = Self.weights(rows: rows, cols: cols, seed: 7)
        let q = Quantizer.int8Blockwise(w, rows: rows, cols: cols, groupSize: g)
        #expect(q.scaleShape == [rows / g, cols / g])
        let ints = q.data.map { Int8(bitPattern: $0) }
        let back = Quantizer.dequantizeInt8Blockwise(ints, rows: rows, cols: cols, scale: q.scale, groupSize: g)
        for r in 0..<rows {
            for c in 0..<cols {
                let scale = q.scale[(r / g) * (cols / g) + c / g]
                let err = abs(w[r * cols + c] - back[r * cols + c])
                // Half a step, plus float32 rounding of the division and product.
                #expect(err <= scale / 2 * (1 + 1e-5), "(\(r), \(c)): error \(err) > \(scale / 2)")
                #expect(abs(Int(ints[r * cols + c])) <= 127)
            }
        }
        var amax: Float = 0
        for r in 0..<g { for c in 0..<g { amax = max(amax, abs(w[r * cols + c])) } }
        #expect(q.scale[0] == amax / 127)
        #expect(q.error.maxAbs <= q.scale.max()! / 2 * (1 + 1e-5))
    }

    @Test("the parallel, branch-free int8 and fp8 quantizers give the bytes, scales and errors of the plain definitions")
    func quantizersMatchTheirDefinitions() throws {
        let rows = 256, cols = 384, g = 128
        var w = Self.weights(rows: rows, cols: cols, seed: 11)
        // Exact halves of a step and negative ties, which rounding must send to the even neighbour.
        for i in stride(from: 5, to: w.count, by: 53) { w[i] = Float(i % 7) - 3.5 }
        let q = Quantizer.int8Blockwise(w, rows: rows, cols: cols, groupSize: g)
        var maxErr: Float = 0, errSquares = 0.0, normSquares = 0.0
        for r in 0..<rows {
            for c in 0..<cols {
                let scale = q.scale[(r / g) * (cols / g) + c / g]
                let x = w[r * cols + c]
                let i = Int8(min(max(x / scale, -127), 127).rounded(.toNearestOrEven))
                #expect(Int8(bitPattern: q.data[r * cols + c]) == i, "(\(r), \(c))")
                let e = abs(x - Float(i) * scale)
                maxErr = max(maxErr, e)
                errSquares += Double(e * e)
                normSquares += Double(x * x)
            }
        }
        #expect(q.error.maxAbs == maxErr)
        #expect(abs(q.error.relative - Float((errSquares / normSquares).squareRoot())) <= 1e-5 * q.error.relative)

        let f8 = Quantizer.float8E4M3(w, shape: [rows, cols])
        let amax = w.map(abs).max() ?? 0
        #expect(f8.scale == [amax / 448])
        let scaled = w.map { min(max($0 * (1 / f8.scale[0]), -448), 448) }
        var expected = [UInt8](repeating: 0, count: w.count)
        try scaled.withUnsafeBufferPointer { s in try expected.withUnsafeMutableBytes { _ = try DTypeConversion.encode(s, as: .f8e4m3, into: $0) } }
        #expect(f8.data == expected)
    }

    @Test("int8 blockwise rounds half to even like torch.round and keeps zero blocks finite")
    func int8RoundingAndZeros() {
        // One 2x2 block: absmax 127 gives scale 1, so values are rounded directly.
        let q = Quantizer.int8Blockwise([2.5, -0.5, 127, 1.5], rows: 2, cols: 2, groupSize: 2)
        #expect(q.data.map { Int8(bitPattern: $0) } == [2, 0, 127, 2])
        let zeros = Quantizer.int8Blockwise([0, 0, 0, 0], rows: 2, cols: 2, groupSize: 2)
        #expect(zeros.scale == [Quantizer.minimumScale])
        #expect(zeros.data == [0, 0, 0, 0])
    }

    @Test("fp8 e4m3: one scale = absmax/448, the largest value maps to 448, error within e4m3's half ulp")
    func float8Scale() throws {
        let w = Self.weights(rows: 16, cols: 16, seed: 3)
        let q = Quantizer.float8E4M3(w, shape: [16, 16])
        let amax = w.map(abs).max()!
        #expect(q.scale == [amax / 448])
        #expect(q.scaleShape == [])
        let i = w.firstIndex { abs($0) == amax }!
        #expect(abs(DTypeConversion.f8e4m3ToFloat(q.data[i])) == 448)
        // e4m3 has 3 mantissa bits: relative rounding error at most 2^-4 for normal values.
        #expect(q.error.maxAbs <= amax / 16)
        #expect(q.error.relative < 0.05)
    }

    @Test("quantization metadata round-trips through the ComfyUI JSON")
    func metadataRoundTrip() throws {
        let meta = QuantizationMetadata(layers: [
            "transformer_blocks.0.attn1.to_q": .init(format: .int8Blockwise, groupSize: 128),
            "proj_out": .init(format: .float8E4M3FN),
        ])
        #expect(meta.jsonText == #"{"format_version":"1.0","layers":{"proj_out":{"format":"float8_e4m3fn"},"#
                + #""transformer_blocks.0.attn1.to_q":{"format":"int8_blockwise","group_size":128}}}"#)
        let parsed = try QuantizationMetadata(metadata: [QuantizationMetadata.metadataKey: meta.jsonText], path: "x")
        #expect(parsed == meta)
        #expect(try QuantizationMetadata(metadata: [:], path: "x") == nil)
        #expect(throws: WeightOpsError.self) {
            _ = try QuantizationMetadata(metadata: [QuantizationMetadata.metadataKey: #"{"layers":{"a":{"format":"nf4"}}}"#], path: "x")
        }
    }
}
