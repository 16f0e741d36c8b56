import Safetensors

/// The human-readable form of an inspection: one block per checkpoint, labels in one aligned column.
extension InspectionReport {
    public func text() -> String {
        // A pipeline's overview goes right before its first component's checkpoint.
        var pending = pipelines
        var blocks: [String] = []
        for file in files {
            if let i = pending.firstIndex(where: { $0.components.contains { $0.weights.contains(file.path) } }) {
                blocks.append(pending.remove(at: i).text())
            }
            blocks.append(file.text())
        }
        blocks += pending.map { $0.text() }
        return blocks.joined(separator: "\n")
    }
}

extension InspectedPipeline {
    func text() -> String {
        var out = "\(path): diffusers pipeline\(className.map { " \($0)" } ?? "")\n"
        let width = components.map(\.name.count).max() ?? 0
        for c in components {
            let what = [c.library, c.className].compactMap { $0 }.joined(separator: " ")
            let weights = c.weights.isEmpty ? "no weights" : "\(c.weights.count) checkpoint\(c.weights.count == 1 ? "" : "s")"
            out += "  \(TextTable.pad(c.name, width))  \(what) (\(weights))\n"
        }
        return out
    }
}

extension InspectedFile {
    func text() -> String {
        var rows: [(String, String)] = []
        if let component {
            rows.append(("component", component + (componentClass.map { " (\($0))" } ?? "")))
        }
        rows.append(("kind", kind.rawValue))
        rows.append(("tensors", TextTable.count(tensors)))
        rows.append(("parameters", TextTable.count(parameters) + " (\(TextTable.scaled(parameters)))"))
        rows.append(("data", TextTable.bytes(bytes)))
        let dtypeRows = dtypes.sorted { $0.value.bytes != $1.value.bytes ? $0.value.bytes > $1.value.bytes : $0.key < $1.key }
        let dtypeText = TextTable.columns(dtypeRows.map { [$0.key, "\(TextTable.count($0.value.tensors)) tensors", TextTable.bytes($0.value.bytes)] },
                                          rightAligned: [false, true, true])
        for (j, line) in dtypeText.enumerated() { rows.append((j == 0 ? "dtypes" : "", line)) }
        if let shards {
            for (j, shard) in shards.enumerated() {
                let name = shard.path.split(separator: "/").last.map(String.init) ?? shard.path
                var line = "\(name)  \(shard.tensors) tensor\(shard.tensors == 1 ? "" : "s"), \(TextTable.bytes(shard.fileBytes))"
                if let hash = shard.sha256 { line += "  sha256 \(hash)" }
                rows.append((j == 0 ? "shards" : "", line))
            }
        }
        if metadata.isEmpty {
            rows.append(("metadata", "none"))
        } else {
            // Training tools write dozens of entries; the first ones, then a count (--json has them all).
            let shown = 12
            for (j, (key, value)) in metadata.sorted(by: { $0.key < $1.key }).prefix(shown).enumerated() {
                rows.append((j == 0 ? "metadata" : "", "\(key): \(TextTable.abbreviate(value))"))
            }
            if metadata.count > shown { rows.append(("", "… and \(metadata.count - shown) more (--json lists all)")) }
        }
        if let config { rows.append(("config", config)) }
        rows += summaryRows()
        if let sha256 { rows.append(("sha256", sha256)) }
        for (j, note) in summary.notes.enumerated() { rows.append((j == 0 ? "notes" : "", note)) }

        var out = path + "\n"
        let width = rows.map(\.0.count).max() ?? 0
        for (label, value) in rows {
            out += "  \(TextTable.pad(label, width))  \(value)\n"
        }
        if let tensorList {
            out += "  tensors\(tensorList.count == tensors ? "" : " (\(tensorList.count) of \(tensors))"):\n"
            let lines = TextTable.columns(tensorList.map { row in
                [row.name, row.dtype, "[" + row.shape.map(String.init).joined(separator: ", ") + "]", TextTable.bytes(row.bytes)]
            }, rightAligned: [false, false, false, true])
            for line in lines { out += "    \(line)\n" }
        }
        return out
    }

    private func summaryRows() -> [(String, String)] {
        var rows: [(String, String)] = []
        if let t = summary.transformer {
            rows.append(("depth", "\(t.depth) transformer blocks"))
            rows.append(("width", "\(t.width)"))
            rows.append(("heads", Self.heads(t.heads, t.headDim, t.headsSource)))
            rows.append(("patch size", "\(t.patchSize)" + (t.timePatchSize.map { " (× \($0) frames)" } ?? "")))
            rows.append(("channels", "in \(t.inChannels), out \(t.outChannels.map(String.init) ?? "?")" + (t.learnedSigma ? " (learned sigma)" : "")))
            if let c = t.captionChannels { rows.append(("caption", "\(c) channels")) }
            if let c = t.crossAttentionDim { rows.append(("cross-attention", "\(c)")) }
            if let f = t.feedForwardDim { rows.append(("feed-forward", "\(f)")) }
            if t.additionalConditions { rows.append(("conditions", "resolution and aspect ratio")) }
            if !t.hasMotionModule { rows.append(("motion module", "none")) }
        }
        if let m = summary.motionModule {
            let indices = m.blockIndices == Array(0..<m.blocks) ? "" : " (blocks \(m.blockIndices.map(String.init).joined(separator: ", ")))"
            rows.append(("motion module", "\(m.blocks) blocks\(indices), width \(m.width) on \(m.channels) channels"))
            rows.append(("  layers", "\(m.layers) × \(m.attentionsPerLayer) temporal attentions" + (m.feedForwardDim.map { ", feed-forward \($0)" } ?? "")))
            rows.append(("  heads", Self.heads(m.heads, m.heads.map { m.width / max($0, 1) }, m.headsSource)))
            rows.append(("  positions", m.positionalEncoding ? "sinusoidal, \(m.positionalEncodingLength.map(String.init) ?? "?") frames" : "not stored"))
        }
        if let l = summary.lora {
            rows.append(("modules", "\(l.modules): \(l.transformerModules) transformer (\(l.temporalModules) temporal), \(l.textEncoderModules) text encoder"))
            rows.append(("rank", l.ranks.count > 1 ? "\(l.rank ?? 0) (also \(l.ranks.filter { $0 != l.rank }.map(String.init).joined(separator: ", ")))" : "\(l.rank.map(String.init) ?? "?")"))
            var alpha = l.alpha.map { TextTable.number($0) } ?? "= rank (no alpha tensors)"
            if l.alphas.count > 1 { alpha += " (also \(l.alphas.filter { $0 != l.alpha }.map(TextTable.number).joined(separator: ", ")))" }
            if l.modulesWithoutAlpha > 0, l.alpha != nil { alpha += "; \(l.modulesWithoutAlpha) modules without alpha use their rank" }
            rows.append(("alpha", alpha))
            if l.convModules > 0 { rows.append(("conv modules", "\(l.convModules)")) }
        }
        if let v = summary.vae {
            rows.append(("layout", v.layout + (v.hasEncoder && v.hasDecoder ? "" : v.hasEncoder ? " (encoder only)" : " (decoder only)")))
            rows.append(("channels", "image \(v.inChannels.map(String.init) ?? "?") → latent \(v.latentChannels.map(String.init) ?? "?") → image \(v.outChannels.map(String.init) ?? "?")"))
            rows.append(("blocks", "\(v.blockOutChannels.count) levels \(v.blockOutChannels), \(v.layersPerBlock.map(String.init) ?? "?") resnet\(v.layersPerBlock == 1 ? "" : "s") per level" + (v.midBlockAttention ? ", mid-block attention" : "")))
            if v.has3DConvolutions { rows.append(("convolutions", "3D (a video VAE)")) }
        }
        if let t = summary.t5 {
            rows.append(("layers", "\(t.layers)"))
            rows.append(("d_model", "\(t.dModel)"))
            rows.append(("heads", Self.heads(t.heads, t.dKV, t.headsSource)))
            rows.append(("feed-forward", "\(t.dFF.map(String.init) ?? "?")" + (t.gatedFeedForward ? " (gated GELU)" : "")))
            rows.append(("vocabulary", t.vocabSize.map(TextTable.count) ?? "none"))
        }
        if let q = summary.quantization {
            let single = q.formats.count == 1
            let formats = q.formats.sorted { $0.key < $1.key }.map { name, usage in
                name + (single ? "" : " \(usage.layers) layers")
                    + (usage.groupSizes.isEmpty ? "" : " (group \(usage.groupSizes.map(String.init).joined(separator: ", ")))")
            }
            rows.append(("quantized", "\(q.layers) layers, " + formats.joined(separator: "; ") + " [from \(q.source)\(q.formatVersion.map { " v\($0)" } ?? "")]"))
        }
        return rows
    }

    private static func heads(_ heads: Int?, _ headDim: Int?, _ source: ValueSource) -> String {
        guard let heads else { return "unknown (shapes do not determine it; no config.json gives it)" }
        return "\(heads)" + (headDim.map { " × \($0)" } ?? "") + " (\(source == .shapes ? "from shapes" : source == .config ? "from config.json" : source.rawValue))"
    }
}

/// Formatting helpers for aligned plain-text output.
enum TextTable {
    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    static func padLeft(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// Rows of cells as lines with aligned columns (two spaces between).
    static func columns(_ rows: [[String]], rightAligned: [Bool]) -> [String] {
        guard let n = rows.first?.count else { return [] }
        let widths = (0..<n).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                let right = c < rightAligned.count && rightAligned[c]
                return right ? padLeft(cell, widths[c]) : (c == n - 1 ? cell : pad(cell, widths[c]))
            }.joined(separator: "  ")
        }
    }

    /// 1234567 → "1,234,567".
    static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// 610_856_960 → "610.9 M".
    static func scaled(_ n: Int) -> String {
        let units: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")]
        for (size, unit) in units where Double(n) >= size {
            return "\(oneDecimal(Double(n) / size)) \(unit)"
        }
        return "\(n)"
    }

    /// Binary units, as `ls -lh` does.
    static func bytes(_ n: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        guard value >= 1024 else { return "\(n) B" }
        var unit = -1
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(oneDecimal(value)) \(units[unit])"
    }

    static func oneDecimal(_ x: Double) -> String {
        let tenths = Int((x * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// 2.0 → "2", 0.5 → "0.5".
    static func number(_ x: Double) -> String {
        x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }

    /// Long metadata values (a quantization table, a training config) cut to one readable line.
    static func abbreviate(_ s: String, limit: Int = 100) -> String {
        let oneLine = s.split(whereSeparator: \.isNewline).joined(separator: " ")
        guard oneLine.count > limit else { return oneLine }
        return String(oneLine.prefix(limit)) + "… (\(count(s.count)) characters)"
    }
}
