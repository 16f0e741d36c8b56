import EANumerics
import Safetensors

/// A LoRA file and the multiplier it is merged at (negative unmerges).
public struct LoRASpec: Sendable, Equatable, Codable {
    public let path: String
    public let multiplier: Double

    public init(path: String, multiplier: Double) {
        self.path = path
        self.multiplier = multiplier
    }

    /// `FILE` or `FILE:MULT` (`lora.safetensors:0.55`); a path that itself contains `:` stays whole
    /// unless what follows the last `:` is a number.
    public init(parsing text: String, defaultMultiplier: Double = 1) {
        if let colon = text.lastIndex(of: ":"), let m = Double(text[text.index(after: colon)...]),
           colon != text.startIndex {
            self.init(path: String(text[..<colon]), multiplier: m)
        } else {
            self.init(path: text, multiplier: defaultMultiplier)
        }
    }

    /// The same file applied with the opposite sign.
    public var negated: LoRASpec { LoRASpec(path: path, multiplier: -multiplier) }
}

/// Where an unmatched LoRA module was meant to go, for the report.
public enum LoRAModuleGroup: String, Sendable, Codable, CaseIterable {
    case transformerSpatial = "transformer_spatial"
    case transformerTemporal = "transformer_temporal"
    case textEncoder = "text_encoder"

    public init(_ name: LoRAModuleName) {
        switch name.target {
        case .textEncoder: self = .textEncoder
        case .transformer: self = name.isTemporal ? .transformerTemporal : .transformerSpatial
        }
    }

    public var label: String {
        switch self {
        case .transformerSpatial: return "transformer (spatial)"
        case .transformerTemporal: return "transformer (temporal / motion module)"
        case .textEncoder: return "text encoder"
        }
    }
}

/// What a merge did or would do: the answer to "did the LoRA apply?".
public struct LoRAMergeReport: Sendable, Codable {
    public struct LoRAEntry: Sendable, Codable {
        public let path: String
        public let multiplier: Double
        public let modules: Int
        public var applied: Int
        public let ranks: [Int]
        public let alphas: [Double]
    }

    public struct ShapeMismatch: Sendable, Codable {
        public let lora: String
        public let module: String
        public let tensor: String
        public let update: [Int]
        public let weight: [Int]
    }

    public var loras: [LoRAEntry] = []
    /// Components of the base that LoRA parts were matched against ("transformer", "text_encoder").
    public var components: [String] = []
    public var applied: Int { loras.reduce(0) { $0 + $1.applied } }
    public var total: Int { loras.reduce(0) { $0 + $1.modules } }
    /// Modules for a part the base has, naming a weight it does not have.
    public var unmatched: [LoRAModuleGroup: [String]] = [:]
    /// Modules for a model the base does not contain (text-encoder modules when merging a transformer).
    public var otherModel: [LoRATarget: Int] = [:]
    public var shapeMismatches: [ShapeMismatch] = []
    /// Base tensors that change.
    public var changedTensors: Int = 0
    /// Flattened names two base weights share; the LoRA went to the first listed.
    public var keyCollisions: [String: [String]] = [:]

    public var unmatchedCount: Int { unmatched.values.reduce(0) { $0 + $1.count } }

    enum CodingKeys: String, CodingKey {
        case loras, components, applied, total, unmatched, otherModel = "other_model", shapeMismatches = "shape_mismatches"
        case changedTensors = "changed_tensors", keyCollisions = "key_collisions"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(loras, forKey: .loras)
        try c.encode(components, forKey: .components)
        try c.encode(applied, forKey: .applied)
        try c.encode(total, forKey: .total)
        try c.encode(Dictionary(uniqueKeysWithValues: unmatched.map { ($0.key.rawValue, $0.value) }), forKey: .unmatched)
        try c.encode(Dictionary(uniqueKeysWithValues: otherModel.map { ($0.key.rawValue, $0.value) }), forKey: .otherModel)
        try c.encode(shapeMismatches, forKey: .shapeMismatches)
        try c.encode(changedTensors, forKey: .changedTensors)
        try c.encode(keyCollisions, forKey: .keyCollisions)
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        loras = try c.decode([LoRAEntry].self, forKey: .loras)
        components = try c.decode([String].self, forKey: .components)
        let u = try c.decode([String: [String]].self, forKey: .unmatched)
        unmatched = Dictionary(uniqueKeysWithValues: u.compactMap { k, v in LoRAModuleGroup(rawValue: k).map { ($0, v) } })
        let o = try c.decode([String: Int].self, forKey: .otherModel)
        otherModel = Dictionary(uniqueKeysWithValues: o.compactMap { k, v in LoRATarget(rawValue: k).map { ($0, v) } })
        shapeMismatches = try c.decode([ShapeMismatch].self, forKey: .shapeMismatches)
        changedTensors = try c.decode(Int.self, forKey: .changedTensors)
        keyCollisions = try c.decode([String: [String]].self, forKey: .keyCollisions)
    }

    /// Plain-text lines for a terminal.
    public var lines: [String] {
        var out = ["applied \(applied)/\(total) LoRA modules, changing \(changedTensors) tensor(s)"]
        for l in loras {
            let alphas = l.alphas.isEmpty ? "none (= rank)" : l.alphas.map { formatNumber($0) }.joined(separator: ",")
            out.append("  \(l.path) x\(formatNumber(l.multiplier)): \(l.applied)/\(l.modules) modules, rank "
                       + l.ranks.map(String.init).joined(separator: ",") + ", alpha " + alphas)
        }
        for (target, n) in otherModel.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out.append("skipped \(n) \(target == .textEncoder ? "text-encoder" : "transformer") module(s): the base has no \(target == .textEncoder ? "text encoder" : "transformer")")
        }
        for group in LoRAModuleGroup.allCases {
            guard let names = unmatched[group], !names.isEmpty else { continue }
            out.append("unmatched \(group.label): \(names.count) module(s) name no weight of the base")
            for n in names.prefix(8) { out.append("    \(n)") }
            if names.count > 8 { out.append("    … and \(names.count - 8) more") }
        }
        for m in shapeMismatches {
            out.append("shape mismatch: \(m.module) (\(m.lora)) makes \(m.update), '\(m.tensor)' is \(m.weight); not applied")
        }
        for (flat, keys) in keyCollisions.sorted(by: { $0.key < $1.key }) {
            out.append("note: '\(flat)' could name \(keys.joined(separator: " or ")); used \(keys[0])")
        }
        return out
    }
}

func formatNumber(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
}

/// Which LoRA modules go into which base tensors, decided before anything is written.
///
/// This reproduces EasyAnimate's `merge_lora` (easyanimate/utils/lora_utils.py, April 2024): for each module,
/// `W += multiplier * (alpha / rank) * (up @ down)` in float32, with `alpha / rank = 1` when the file has no
/// alpha, 1x1 conv weights treated as matrices. Several LoRAs apply in the order given, as repeated calls
/// would. Modules are matched by `KeyMap` against the base's real keys.
public struct LoRAMergePlan: Sendable {
    public struct Application: Sendable {
        /// Index into `loras`.
        public let lora: Int
        public let module: LoRAModule
        public let scale: Float
    }

    /// One model inside the base: a transformer, a text encoder.
    public struct Component: Sendable {
        public let name: String
        public let base: any StateDict
        public let target: LoRATarget
        /// Base key → the updates it receives, in order.
        public let updates: [String: [Application]]
    }

    public let loras: [LoRAFile]
    public let specs: [LoRASpec]
    public let components: [Component]
    public let report: LoRAMergeReport

    /// `components`: the models in the base with the LoRA part each takes.
    public init(components bases: [(name: String, base: any StateDict, target: LoRATarget)],
                loras: [LoRAFile], specs: [LoRASpec]) {
        precondition(loras.count == specs.count, "one spec per LoRA file")
        var report = LoRAMergeReport()
        report.components = bases.map(\.name)
        let maps = bases.map { KeyMap(keys: $0.base.keys) }
        for map in maps { report.keyCollisions.merge(map.collisions) { a, _ in a } }
        var updates = Array(repeating: [String: [Application]](), count: bases.count)

        for (li, lora) in loras.enumerated() {
            let multiplier = specs[li].multiplier
            var applied = 0
            for module in lora.modules {
                guard let ci = bases.firstIndex(where: { $0.target == module.name.target }) else {
                    report.otherModel[module.name.target, default: 0] += 1
                    continue
                }
                guard let key = maps[ci].resolve(module.name, target: bases[ci].target),
                      let info = bases[ci].base.info(key) else {
                    report.unmatched[LoRAModuleGroup(module.name), default: []].append(module.name.name)
                    continue
                }
                guard LoRAMergePlan.fits(module, info) else {
                    report.shapeMismatches.append(.init(lora: lora.path, module: module.name.name, tensor: key,
                                                        update: module.updateShape, weight: info.shape))
                    continue
                }
                updates[ci][key, default: []].append(
                    Application(lora: li, module: module, scale: module.scale(multiplier: multiplier)))
                applied += 1
            }
            report.loras.append(.init(
                path: lora.path, multiplier: multiplier, modules: lora.modules.count, applied: applied,
                ranks: Array(Set(lora.modules.map(\.rank))).sorted(),
                alphas: Array(Set(lora.modules.compactMap(\.alpha))).sorted()))
        }
        report.changedTensors = updates.reduce(0) { $0 + $1.count }
        self.loras = loras
        self.specs = specs
        self.components = bases.indices.map {
            Component(name: bases[$0].name, base: bases[$0].base, target: bases[$0].target, updates: updates[$0])
        }
        self.report = report
    }

    /// A Linear update (out, in) fits a (out, in) weight or a 1x1 conv (out, in, 1, 1), and the reverse.
    static func fits(_ module: LoRAModule, _ weight: TensorInfo) -> Bool {
        guard weight.dtype.isFloatingPoint else { return false }
        let s = weight.shape
        guard s.count == 2 || (s.count == 4 && s[2] == 1 && s[3] == 1) else { return false }
        return s[0] == module.outFeatures && s[1] == module.inFeatures
    }

    /// `--strict`: unmatched modules and shape mismatches are errors, and so is a merge that applies nothing.
    public func validate(strict: Bool) throws {
        if report.applied == 0 {
            var parts: [String] = []
            let unmatched = report.unmatchedCount
            if unmatched > 0 { parts.append("\(unmatched) name weights the base does not have") }
            if !report.shapeMismatches.isEmpty { parts.append("\(report.shapeMismatches.count) have other shapes") }
            for (target, n) in report.otherModel.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                parts.append("\(n) are for a \(target == .textEncoder ? "text encoder" : "transformer"), which the base does not hold")
            }
            throw WeightOpsError.incompatible(
                path: loras.map(\.path).joined(separator: ", "),
                reason: "none of the \(report.total) LoRA modules apply to the base (" + parts.joined(separator: "; ")
                    + "); is this LoRA for another model? --dry-run lists them")
        }
        guard strict else { return }
        let unmatched = LoRAModuleGroup.allCases.flatMap { report.unmatched[$0] ?? [] }
        if !unmatched.isEmpty {
            throw WeightOpsError.unmatchedLoRAModules(path: loras.map(\.path).joined(separator: ", "),
                                                      count: unmatched.count, examples: unmatched)
        }
        if let m = report.shapeMismatches.first {
            throw WeightOpsError.loraShapeMismatch(path: m.lora, module: m.module, tensor: m.tensor,
                                                   expected: m.update, actual: m.weight)
        }
    }

    /// Adds every update of `key` to `weight` (the base tensor decoded to float32), then checks the result.
    public func apply(_ applications: [Application], to weight: UnsafeMutableBufferPointer<Float>, tensor key: String) throws {
        for app in applications {
            let (up, down) = try loras[app.lora].factors(of: app.module)
            let m = app.module.outFeatures, n = app.module.inFeatures, k = app.module.rank
            guard weight.count == m * n else {
                throw WeightOpsError.loraShapeMismatch(path: loras[app.lora].path, module: app.module.name.name,
                                                       tensor: key, expected: [m, n], actual: [weight.count])
            }
            // W += scale * (up @ down): the product and the accumulation in one sgemm (beta = 1).
            guard let c = weight.baseAddress else { continue }
            up.withUnsafeBufferPointer { a in
                down.withUnsafeBufferPointer { b in
                    guard let a = a.baseAddress, let b = b.baseAddress else { return }
                    BLAS.sgemm(.none, .none, m: m, n: n, k: k, alpha: app.scale, a: a, lda: k, b: b, ldb: n,
                               beta: 1, c: c, ldc: n)
                }
            }
        }
        for lora in Set(applications.map(\.lora)) { loras[lora].releasePages() }
        let bad = NumericChecks.nonFiniteCount(UnsafeBufferPointer(weight))
        if bad > 0 { throw WeightOpsError.nonFinite(tensor: key, count: bad) }
    }

    /// The merged float32 values of one base tensor (for tests and small tools; the writer streams).
    public func mergedTensor(component: Int = 0, key: String) throws -> [Float] {
        let c = components[component]
        var values = try c.base.tensor(key).toFloat32()
        if let apps = c.updates[key] {
            try values.withUnsafeMutableBufferPointer { try apply(apps, to: $0, tensor: key) }
        }
        return values
    }
}

extension String {
    var trimmingLeadingSpaces: String { String(drop(while: { $0 == " " })) }
}
