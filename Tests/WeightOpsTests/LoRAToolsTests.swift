import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

/// Singular values by one-sided Jacobi (Hestenes) in double precision: an SVD route independent of LAPACK,
/// for the optimum the LoRA tools are checked against (Eckart–Young: the best rank-r error is
/// sqrt(Σ_{i>r} σᵢ²)).
enum JacobiSVD {
    static func singularValues(_ a: [Double], rows m: Int, columns n: Int) -> [Double] {
        // Orthogonalize the shorter side's vectors (columns of A, or of Aᵀ), stored one after another.
        let (count, length) = n <= m ? (n, m) : (m, n)
        var v = [Double](repeating: 0, count: count * length)
        for i in 0..<m { for j in 0..<n { if n <= m { v[j * length + i] = a[i * n + j] } else { v[i * length + j] = a[i * n + j] } } }
        v.withUnsafeMutableBufferPointer { v in
            for _ in 0..<60 {
                var rotated = false
                for p in 0..<count {
                    for q in (p + 1)..<max(p + 1, count) {
                        let x = v.baseAddress! + p * length, y = v.baseAddress! + q * length
                        var alpha = 0.0, beta = 0.0, gamma = 0.0
                        for k in 0..<length { alpha += x[k] * x[k]; beta += y[k] * y[k]; gamma += x[k] * y[k] }
                        if gamma == 0 || abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() { continue }
                        rotated = true
                        let zeta = (beta - alpha) / (2 * gamma)
                        let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                        let c = 1 / (1 + t * t).squareRoot(), s = c * t
                        for k in 0..<length {
                            let xk = x[k], yk = y[k]
                            x[k] = c * xk - s * yk
                            y[k] = s * xk + c * yk
                        }
                    }
                }
                if !rotated { break }
            }
        }
        return (0..<count).map { j in v[(j * length)..<((j + 1) * length)].reduce(0) { $0 + $1 * $1 }.squareRoot() }.sorted(by: >)
    }

    static func optimalError(_ a: [Double], rows m: Int, columns n: Int, rank r: Int) -> Double {
        singularValues(a, rows: m, columns: n).dropFirst(r).reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
}

/// Fixture models with a known low-rank change, written once per test into a temporary folder.
struct LowRankChangeFixture {
    let dir: URL
    /// The fixture's 3D transformer (2D weights + motion module).
    let base: String
    /// `base` with a rank-8 LoRA on every Linear (motion module included) merged in.
    let tuned: String
    let lora: String

    static let rank = 8

    init() throws {
        dir = try Fixtures.temporaryDirectory()
        base = dir.appendingPathComponent("base3d.safetensors").path
        _ = try BackboneSwap.run(.init(backbone: Fixtures.transformer2D, motionModule: Fixtures.motionModule, output: base))
        lora = dir.appendingPathComponent("rank8.safetensors").path
        let dict = try SafetensorsFile(path: base)
        var tensors: [OutputTensor] = []
        var seed: UInt64 = 12345
        func random(_ count: Int, _ amplitude: Float) -> [Float] {
            (0..<count).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return (Float(seed >> 40) / Float(1 << 24) * 2 - 1) * amplitude
            }
        }
        for key in dict.keys {
            guard let info = dict.info(key), key.hasSuffix(".weight"), info.shape.count == 2 else { continue }
            let name = LoRAModuleName.name(forWeightKey: key, target: .transformer)
            let (out, n) = (info.shape[0], info.shape[1])
            tensors.append(.floats(random(Self.rank * n, 0.3), name: name + ".lora_down.weight", dtype: .f32, shape: [Self.rank, n]))
            tensors.append(.floats(random(out * Self.rank, 0.3), name: name + ".lora_up.weight", dtype: .f32, shape: [out, Self.rank]))
            tensors.append(.floats([4], name: name + ".alpha", dtype: .f32, shape: []))
        }
        try CheckpointStreamer.write(to: lora, tensors: tensors, metadata: ["ss_network_dim": "8", "ss_network_alpha": "4.0"])
        tuned = dir.appendingPathComponent("tuned3d.safetensors").path
        var options = LoRAMergeOptions(base: base, loras: [LoRASpec(path: lora, multiplier: 1)], output: tuned)
        options.dtype = .f32
        _ = try LoRAMerge.run(options)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// TUNED − BASE of one weight, in double.
    func change(_ key: String) throws -> [Double] {
        let b = try SafetensorsFile(path: base).tensor(key).toFloat32()
        let t = try SafetensorsFile(path: tuned).tensor(key).toFloat32()
        return zip(t, b).map { Double($0) - Double($1) }
    }
}

/// The effective change `(alpha / rank) · up @ down` of one module, in double.
func effectiveChange(_ lora: LoRAFile, _ module: LoRAModule, multiplier: Double = 1) throws -> [Double] {
    let (up, down) = try lora.factors(of: module)
    let m = module.outFeatures, n = module.inFeatures, r = module.rank
    let scale = multiplier * module.alphaScale
    var out = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for k in 0..<r {
        let u = Double(up[i * r + k]) * scale
        for j in 0..<n { out[i * n + j] += u * Double(down[k * n + j]) }
    } }
    return out
}

func frobenius(_ a: [Double]) -> Double { a.reduce(0) { $0 + $1 * $1 }.squareRoot() }
func frobeniusDistance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }

@Suite("LoRA tools: extract, resize, combine")
struct LoRAToolsTests {
    @Test("extract-lora at R >= 8 recovers a merged rank-8 change within 1e-5 per layer, motion module included")
    func extractRecoversLowRankChange() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        for rank in [8, 12] {
            var options = LoRAExtractionOptions(base: fx.base, tuned: fx.tuned, output: fx.path("x\(rank).safetensors"), rank: rank)
            options.clampQuantile = 1
            let result = try LoRAExtraction.run(options)
            let lora = try LoRAFile(path: fx.path("x\(rank).safetensors"))
            #expect(lora.modules.count == result.layers.count)
            #expect(lora.modules.contains { $0.name.isTemporal })
            #expect(result.unchanged.isEmpty)
            for module in lora.modules {
                let layer = try #require(result.layers.first { $0.module == module.name.name })
                let key = try #require(layer.tensor)
                let delta = try fx.change(key)
                let error = frobeniusDistance(try effectiveChange(lora, module), delta) / frobenius(delta)
                #expect(error <= 1e-5, "\(key) at rank \(rank): relative error \(error)")
                #expect(module.rank == min(rank, module.outFeatures, module.inFeatures))
                #expect(module.alpha == Double(module.rank))
            }
        }
    }

    @Test("extract-lora at R < 8 has every layer's error within 1e-4 of the Eckart–Young optimum (Jacobi SVD)")
    func extractIsOptimalBelowTheRank() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        var options = LoRAExtractionOptions(base: fx.base, tuned: fx.tuned, output: fx.path("x3.safetensors"), rank: 3)
        options.clampQuantile = 1
        let result = try LoRAExtraction.run(options)
        let lora = try LoRAFile(path: fx.path("x3.safetensors"))
        for module in lora.modules {
            let key = try #require(result.layers.first { $0.module == module.name.name }?.tensor)
            let delta = try fx.change(key)
            let error = frobeniusDistance(try effectiveChange(lora, module), delta)
            let optimum = JacobiSVD.optimalError(delta, rows: module.outFeatures, columns: module.inFeatures, rank: 3)
            #expect(abs(error - optimum) <= 1e-4 * optimum, "\(key): error \(error), optimum \(optimum)")
        }
    }

    @Test("extract-lora on a full-rank change (the personalized backbone) is optimal within 1e-4 per layer")
    func extractIsOptimalOnAFullRankChange() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.safetensors").path
        var options = LoRAExtractionOptions(base: Fixtures.transformer2D, tuned: Fixtures.personalized, output: out, rank: 4)
        options.clampQuantile = 1
        options.minDiff = 0
        let result = try LoRAExtraction.run(options)
        #expect(result.notCarried.contains { $0.tensor == "pos_embed.proj.weight" })
        let lora = try LoRAFile(path: out)
        let base = try SafetensorsFile(path: Fixtures.transformer2D), tuned = try SafetensorsFile(path: Fixtures.personalized)
        for module in lora.modules {
            let key = try #require(result.layers.first { $0.module == module.name.name }?.tensor)
            let delta = zip(try tuned.tensor(key).toFloat32(), try base.tensor(key).toFloat32()).map { Double($0) - Double($1) }
            let error = frobeniusDistance(try effectiveChange(lora, module), delta)
            let optimum = JacobiSVD.optimalError(delta, rows: module.outFeatures, columns: module.inFeatures, rank: 4)
            #expect(abs(error - optimum) <= 1e-4 * optimum, "\(key): error \(error), optimum \(optimum)")
        }
    }

    @Test("merge-lora(BASE, extract-lora(BASE, TUNED)) gives TUNED back for a low-rank change")
    func roundTrip() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        var options = LoRAExtractionOptions(base: fx.base, tuned: fx.tuned, output: fx.path("x.safetensors"), rank: 8)
        options.clampQuantile = 1
        _ = try LoRAExtraction.run(options)
        var merge = LoRAMergeOptions(base: fx.base, loras: [LoRASpec(path: fx.path("x.safetensors"), multiplier: 1)],
                                     output: fx.path("again.safetensors"))
        merge.dtype = .f32
        let report = try LoRAMerge.run(merge).report
        #expect(report.unmatchedCount == 0 && report.shapeMismatches.isEmpty)
        let again = try SafetensorsFile(path: fx.path("again.safetensors")), tuned = try SafetensorsFile(path: fx.tuned)
        let base = try SafetensorsFile(path: fx.base)
        #expect(again.keys == tuned.keys)
        for key in tuned.keys {
            let t = try tuned.tensor(key).toFloat32(), a = try again.tensor(key).toFloat32(), b = try base.tensor(key).toFloat32()
            let change = zip(t, b).map { Double($0) - Double($1) }
            let distance = zip(a, t).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }.squareRoot()
            #expect(distance <= 1e-5 * max(frobenius(change), 1e-30) + 1e-6, "\(key): \(distance)")
        }
    }

    @Test("the default 0.99 clamp matches kohya's: threshold = torch.quantile of the signed values, both factors clamped")
    func quantileClampMatchesTorch() {
        // torch.quantile(torch.tensor([3., -1., 2., 10., -7., 0.]), 0.75) = 2.75; 0.99 → 9.65 (linear interpolation).
        var x: [Float] = [3, -1, 2, 10, -7, 0]
        #expect(abs(QuantileClamp.quantile(&x, 0.75) - 2.75) < 1e-6)
        x = [3, -1, 2, 10, -7, 0]
        #expect(abs(QuantileClamp.quantile(&x, 0.99) - 9.65) < 1e-5)
        var up: [Float] = [3, -1, 2], down: [Float] = [10, -7, 0]
        let clamp = QuantileClamp.apply(up: &up, down: &down, quantile: 0.75)
        #expect(clamp.threshold == 2.75)
        #expect(up == [2.75, -1, 2] && down == [2.75, -2.75, 0])
        var u1: [Float] = [1, -5], d1: [Float] = [2]
        #expect(QuantileClamp.apply(up: &u1, down: &d1, quantile: 1).threshold == nil)
        #expect(u1 == [1, -5])
    }

    @Test("kohya's dynamic rank rules pick kohya's ranks (its +1 included)")
    func dynamicRules() {
        let s: [Float] = [4, 3, 2, 1]
        // resize_lora.py: index_sv_ratio → sum(S > 4/2) = 2, +1 → 3
        #expect(DynamicRankRule.svRatio.rank(s, fullLength: 10, param: 2) == 3)
        // index_sv_fro: cumsum(S²)/30 = .533 .833 .967 1 ≥ 0.81 at 1, +1 → 2, then +1 → 3
        #expect(DynamicRankRule.svFro.rank(s, fullLength: 10, param: 0.9) == 3)
        // index_sv_cumulative: cumsum(S)/10 = .4 .7 .9 1 ≥ 0.95 at 3, +1 → 4, then +1 → 5
        #expect(DynamicRankRule.svCumulative.rank(s, fullLength: 10, param: 0.95) == 5)
        #expect(DynamicRankRule.svCumulative.rank(s, fullLength: 10, param: 0.1) == 2)
    }

    @Test("resize-lora is optimal within 1e-4 per module and keeps the effective scale; rank 8 is exact")
    func resizeIsOptimal() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        let input = try LoRAFile(path: fx.lora)
        for rank in [3, 8] {
            let out = fx.path("r\(rank).safetensors")
            let result = try LoRAResize.run(LoRAResizeOptions(input: fx.lora, output: out, rank: rank))
            let resized = try LoRAFile(path: out)
            #expect(resized.modules.count == input.modules.count)
            #expect(result.layers.allSatisfy { $0.rank == rank })
            for (a, b) in zip(input.modules, resized.modules) {
                #expect(a.name == b.name && b.rank == rank)
                #expect(b.alpha == 4.0 / 8 * Double(rank))
                let m = try effectiveChange(input, a)
                let error = frobeniusDistance(try effectiveChange(resized, b), m)
                let optimum = JacobiSVD.optimalError(m, rows: a.outFeatures, columns: a.inFeatures, rank: rank)
                let bound = rank == 8 ? 1e-5 * frobenius(m) : 1e-4 * optimum
                #expect(abs(error - optimum) <= bound, "\(a.name.name) at \(rank): \(error) vs \(optimum)")
            }
        }
        let dynamic = fx.path("dyn.safetensors")
        var options = LoRAResizeOptions(input: fx.lora, output: dynamic, rank: nil)
        options.dynamic = .svFro
        options.param = 0.8
        let result = try LoRAResize.run(options)
        let resized = try LoRAFile(path: dynamic)
        #expect(resized.metadata["ss_network_dim"] == "Dynamic")
        for (a, b) in zip(input.modules, resized.modules) {
            let s = JacobiSVD.singularValues(try effectiveChange(input, a), rows: a.outFeatures, columns: a.inFeatures)
            let expected = min(8, DynamicRankRule.svFro.rank(s.prefix(8).map { Float($0) }, fullLength: min(a.outFeatures, a.inFeatures), param: 0.8))
            #expect(b.rank == expected, "\(a.name.name)")
            #expect(result.layers.first { $0.module == a.name.name }?.rank == b.rank)
        }
    }

    @Test("combine-lora is optimal within 1e-4 per module, keeps modules of only one input, exact at the summed rank")
    func combineIsOptimal() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        let a = try LoRAFile(path: Fixtures.lora), b = try LoRAFile(path: fx.lora)
        let specs = [LoRASpec(path: Fixtures.lora, multiplier: 0.55), LoRASpec(path: fx.lora, multiplier: -0.5)]
        for rank in [6, 12] {
            let out = fx.path("c\(rank).safetensors")
            _ = try LoRACombine.run(LoRACombineOptions(inputs: specs, output: out, rank: rank))
            let combined = try LoRAFile(path: out)
            let names = Set(a.modules.map(\.name.name)).union(b.modules.map(\.name.name))
            #expect(Set(combined.modules.map(\.name.name)) == names)
            for module in combined.modules {
                var sum = [Double](repeating: 0, count: module.outFeatures * module.inFeatures)
                var inputRank = 0
                for (lora, spec) in zip([a, b], specs) {
                    guard let m = lora.modules.first(where: { $0.name == module.name }) else { continue }
                    inputRank += m.rank
                    for (i, v) in try effectiveChange(lora, m, multiplier: spec.multiplier).enumerated() { sum[i] += v }
                }
                #expect(module.rank == min(rank, inputRank, module.outFeatures, module.inFeatures))
                let error = frobeniusDistance(try effectiveChange(combined, module), sum)
                let optimum = JacobiSVD.optimalError(sum, rows: module.outFeatures, columns: module.inFeatures, rank: module.rank)
                let bound = module.rank >= inputRank ? 1e-5 * frobenius(sum) : 1e-4 * optimum
                #expect(abs(error - optimum) <= bound, "\(module.name.name) at \(rank): \(error) vs \(optimum)")
            }
        }
    }

    @Test("inspect says kohya-lora with the rank and alpha of each output; provenance names the inputs with SHA-256")
    func outputsInspectAsKohyaLoRA() throws {
        let fx = try LowRankChangeFixture()
        defer { fx.remove() }
        _ = try LoRAExtraction.run(LoRAExtractionOptions(base: fx.base, tuned: fx.tuned, output: fx.path("x.safetensors"), rank: 8))
        _ = try LoRAResize.run(LoRAResizeOptions(input: fx.path("x.safetensors"), output: fx.path("r.safetensors"), rank: 4))
        _ = try LoRACombine.run(LoRACombineOptions(inputs: [LoRASpec(path: fx.path("x.safetensors"), multiplier: 1),
                                                            LoRASpec(path: Fixtures.lora, multiplier: 1)],
                                                   output: fx.path("c.safetensors"), rank: 6))
        for (name, rank, alpha) in [("x.safetensors", 8, 8.0), ("r.safetensors", 4, 4.0), ("c.safetensors", 6, 6.0)] {
            let file = try SafetensorsFile(path: fx.path(name))
            #expect(ModelKind.detect(file) == .kohyaLoRA)
            var notes: [String] = []
            let summary = try LoRASummary(file, notes: &notes)
            #expect(summary.rank == rank, "\(name)")
            #expect(summary.alpha == alpha, "\(name)")
            #expect(file.metadata["ss_network_dim"] == String(rank))
            #expect(file.metadata["ss_network_alpha"] == String(alpha))
            #expect(file.metadata[LoRAMerge.provenanceKey]?.contains(try FileDigest.sha256(path: name == "x.safetensors" ? fx.tuned : fx.path("x.safetensors"))) == true)
        }
    }

    @Test("a diffusers folder: both the transformer and the text encoder are extracted")
    func diffusersFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tuned = dir.appendingPathComponent("tuned").path
        var merge = LoRAMergeOptions(base: Fixtures.pipelineFolder, loras: [LoRASpec(path: Fixtures.lora, multiplier: 1)], output: tuned)
        merge.dtype = .f32
        _ = try LoRAMerge.run(merge)
        var options = LoRAExtractionOptions(base: Fixtures.pipelineFolder, tuned: tuned, output: dir.appendingPathComponent("x.safetensors").path, rank: 4)
        options.minDiff = 0.001
        // BASE's T5 is BF16 and TUNED's F32: the same keys, floating point both.
        let result = try LoRAExtraction.run(options)
        let lora = try LoRAFile(path: dir.appendingPathComponent("x.safetensors").path)
        let original = try LoRAFile(path: Fixtures.lora)
        #expect(Set(lora.modules.map(\.name.name)) == Set(original.modules.map(\.name.name)))
        #expect(result.layers.count == original.modules.count)
    }

    @Test("bad inputs: a LoRA as a model, other kinds, other keys, a rank above every layer; nothing is written")
    func refusesBadInputs() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.safetensors").path
        func fails(_ options: LoRAExtractionOptions, _ fragment: String) {
            #expect {
                _ = try LoRAExtraction.run(options)
            } throws: { error in
                let text = "\(error)"
                return text.contains(fragment) && !text.contains("\n")
            }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        fails(LoRAExtractionOptions(base: Fixtures.lora, tuned: Fixtures.personalized, output: out, rank: 4), "is a kohya LoRA, not a model")
        fails(LoRAExtractionOptions(base: Fixtures.transformer2D, tuned: Fixtures.textEncoderFolder, output: out, rank: 4), "same kind")
        let threeD = dir.appendingPathComponent("3d.safetensors").path
        _ = try BackboneSwap.run(.init(backbone: Fixtures.transformer2D, motionModule: Fixtures.motionModule, output: threeD))
        fails(LoRAExtractionOptions(base: Fixtures.transformer2D, tuned: threeD, output: out, rank: 4), "attn_temporal")
        var big = LoRAExtractionOptions(base: Fixtures.transformer2D, tuned: Fixtures.personalized, output: out, rank: 5000)
        big.minDiff = 0
        fails(big, "above the size of every changed layer")
        #expect(throws: WeightOpsError.self) {
            _ = try LoRAResize.run(LoRAResizeOptions(input: Fixtures.personalized, output: out, rank: 2))
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(throws: WeightOpsError.self) {
            _ = try LoRACombine.run(LoRACombineOptions(inputs: [LoRASpec(path: Fixtures.transformer2D, multiplier: 1)], output: out, rank: 2))
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
