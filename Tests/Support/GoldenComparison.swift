import Safetensors

/// Comparisons with the goldens that check counts, shapes and key sets, not only the values of the golden's keys.
public enum GoldenComparison {
    /// Keys the goldens of 3D state dicts leave out: the motion module's sinusoidal `pos_encoder.pe` buffers
    /// (fixtures/ea-tiny/README.md line 46).
    public static func isLeftOutOfGoldens(_ key: String) -> Bool { key.hasSuffix("pos_encoder.pe") }

    /// The largest |a − b|; infinite when the counts differ (a truncated result never passes) or a value is NaN.
    public static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for i in a.indices {
            let d = abs(a[i] - b[i])
            if d.isNaN { return .infinity }
            worst = max(worst, d)
        }
        return worst
    }

    /// `actual` against the golden state dict `golden`: keys only in one of them (except those `ignoring`
    /// accepts, such as buffers the golden leaves out), shapes that differ, and tensors further apart than
    /// `tolerance` (max abs, as float32). One line per problem; empty when they match.
    public static func stateDictProblems(_ actual: any StateDict, golden: any StateDict, tolerance: Float,
                                         ignoring: (String) -> Bool = { _ in false }) throws -> [String] {
        let actualKeys = Set(actual.keys.filter { !ignoring($0) }), goldenKeys = Set(golden.keys.filter { !ignoring($0) })
        var problems = actualKeys.subtracting(goldenKeys).sorted().map { "\($0): not in the golden" }
        problems += goldenKeys.subtracting(actualKeys).sorted().map { "\($0): missing (the golden has it)" }
        for key in actualKeys.intersection(goldenKeys).sorted() {
            let a = try actual.tensor(key), g = try golden.tensor(key)
            guard a.shape == g.shape else {
                problems.append("\(key): shape \(a.shape), the golden's is \(g.shape)")
                continue
            }
            let diff = maxAbsDifference(a.toFloat32(), g.toFloat32())
            if !(diff <= tolerance) { problems.append("\(key): max abs diff \(diff) > \(tolerance)") }
        }
        return problems
    }
}
