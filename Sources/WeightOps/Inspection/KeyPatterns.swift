import Safetensors

/// Small helpers over checkpoint key names (`transformer_blocks.12.attn1.to_q.weight`), shared by kind
/// detection and the summaries. Names are parsed by hand: they are plain ASCII paths and a state dict can
/// hold thousands of them.
enum KeyPatterns {
    /// Keys that quantized checkpoints add next to a quantized weight (ComfyUI's QUANTIZATION.md, plus the
    /// older `scaled_fp8` marker and `scale_weight` name). They say nothing about which model this is.
    static let quantizationSuffixes = [
        ".weight_scale", ".weight_scale_2", ".input_scale", ".pre_quant_scale", ".comfy_quant", ".scale_weight",
        ".scale_input",
    ]

    static func isQuantizationAuxiliary(_ key: String) -> Bool {
        key == "scaled_fp8" || quantizationSuffixes.contains { key.hasSuffix($0) }
    }

    /// For `prefix` = "transformer_blocks." and key "transformer_blocks.12.attn1.to_q.weight": (12, "attn1.to_q.weight").
    static func index(in key: String, after prefix: String) -> (index: Int, rest: Substring)? {
        guard key.hasPrefix(prefix) else { return nil }
        let tail = key.utf8.dropFirst(prefix.utf8.count)
        var value = 0
        var digits = 0
        var position = tail.startIndex
        while position < tail.endIndex, let digit = asciiDigit(tail[position]) {
            // Indices are small; a run of digits long enough to overflow is not an index.
            guard digits < 9 else { return nil }
            value = value * 10 + digit
            digits += 1
            position = tail.index(after: position)
        }
        guard digits > 0 else { return nil }
        if position == tail.endIndex { return (value, Substring("")) }
        guard tail[position] == UInt8(ascii: ".") else { return nil }
        let restStart = tail.index(after: position)
        return (value, Substring(key[restStart...]))
    }

    /// The distinct indices N of keys `prefix` N `.` ..., sorted.
    static func indices(_ keys: [String], after prefix: String) -> [Int] {
        Set(keys.compactMap { index(in: $0, after: prefix)?.index }).sorted()
    }

    /// The distinct indices N of keys `prefix` N `.` `suffix`..., sorted.
    static func indices(_ keys: [String], after prefix: String, where restHasPrefix: String) -> [Int] {
        Set(keys.compactMap { key -> Int? in
            guard let (i, rest) = index(in: key, after: prefix), rest.hasPrefix(restHasPrefix) else { return nil }
            return i
        }).sorted()
    }

    /// The indices missing from a sorted list that should be 0..<n (empty when none is).
    static func gaps(in sorted: [Int]) -> [Int] {
        guard let last = sorted.last, last + 1 != sorted.count else { return [] }
        let present = Set(sorted)
        return (0...last).filter { !present.contains($0) }
    }

    private static func asciiDigit(_ c: UInt8) -> Int? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }
}

/// Names and shapes of a state dict without the quantization side tensors, the view kind detection and the
/// summaries work on.
struct KeyView {
    /// Model keys (quantization scales and markers left out), sorted.
    let keys: [String]
    let keySet: Set<String>
    private let shapes: [String: [Int]]

    init(_ dict: any StateDict) {
        var keys: [String] = []
        var shapes: [String: [Int]] = [:]
        for key in dict.keys where !KeyPatterns.isQuantizationAuxiliary(key) {
            keys.append(key)
            shapes[key] = dict.info(key)?.shape
        }
        self.init(keys: keys, shapes: shapes)
    }

    init(keys: [String], shapes: [String: [Int]]) {
        self.keys = keys.sorted()
        self.keySet = Set(keys)
        self.shapes = shapes
    }

    func contains(_ key: String) -> Bool { keySet.contains(key) }

    func shape(_ key: String) -> [Int]? { shapes[key] }

    /// Dimension `axis` of `key` (negative counts from the end), when the tensor exists and has it.
    func dim(_ key: String, _ axis: Int) -> Int? {
        guard let s = shapes[key] else { return nil }
        let a = axis < 0 ? s.count + axis : axis
        return a >= 0 && a < s.count ? s[a] : nil
    }
}
