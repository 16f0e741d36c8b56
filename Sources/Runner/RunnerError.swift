/// Errors of the reference runner: each names the component or file and what to fix.
public enum RunnerError: Error, CustomStringConvertible, Sendable {
    case invalidInput(String)
    case missingWeight(key: String, source: String)
    case shapeMismatch(key: String, source: String, expected: [Int], actual: [Int])
    case unsupportedWeightType(key: String, source: String, dtype: String)
    case unexpectedWeights(source: String, keys: [String])
    case invalidConfig(path: String, reason: String)
    case cancelled(stage: String)
    /// Writing an output file (video, frames) failed; nothing partial is left at `path`.
    case outputFailed(path: String, reason: String)
    case invalidTokenizer(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidInput(message):
            return message
        case let .missingWeight(key, source):
            return "\(source): missing weight '\(key)'"
        case let .shapeMismatch(key, source, expected, actual):
            return "\(source): weight '\(key)' has shape \(actual), the model expects \(expected)"
        case let .unsupportedWeightType(key, source, dtype):
            return "\(source): weight '\(key)' has dtype \(dtype), which the runner cannot load"
        case let .unexpectedWeights(source, keys):
            let shown = keys.prefix(5).joined(separator: ", ")
            return "\(source): \(keys.count) weight(s) the model does not use: \(shown)\(keys.count > 5 ? ", ..." : "")"
        case let .invalidConfig(path, reason):
            return "\(path): \(reason)"
        case let .cancelled(stage):
            return "interrupted during \(stage); nothing was left behind"
        case let .outputFailed(path, reason):
            return "\(path): cannot write the output: \(reason)"
        case let .invalidTokenizer(path, reason):
            return "\(path): \(reason)"
        }
    }
}
