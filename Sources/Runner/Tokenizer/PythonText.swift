/// Python's `str.lower()` and `str.strip()`, which the pipeline applies to every prompt before tokenizing.
/// Python works on code points with its own definitions, which differ from Swift's `lowercased()` (no final
/// sigma) and `trimmingCharacters(in: .whitespaces)` (a different whitespace set), so they are spelled out here.
enum PythonText {
    /// `str.lower()`: full lowercase mapping per code point, with Greek capital sigma becoming final sigma (ς)
    /// at the end of a word, as CPython's `handle_capital_sigma` decides.
    static func lower(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x03A3 {
                out.append(isFinalSigma(scalars, at: i) ? "\u{03C2}" : "\u{03C3}")
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    /// `str.strip()`: removes leading and trailing characters for which `str.isspace()` is true.
    static func strip(_ text: String) -> String { String(String.UnicodeScalarView(strip(Array(text.unicodeScalars)))) }

    static func strip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] { rstrip(lstrip(s)) }

    static func lstrip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let first = s.firstIndex(where: { !isSpace($0) }) else { return [] }
        return Array(s[first...])
    }

    static func rstrip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let last = s.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(s[...last])
    }

    /// `str.isspace()` for one code point: bidirectional class WS, B or S, or general category Zs.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Final_Sigma: preceded by a cased letter and not followed by one, skipping case-ignorable characters.
    private static func isFinalSigma(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count, s[k].properties.isCaseIgnorable { k += 1 }
        return k == s.count || !s[k].properties.isCased
    }
}
