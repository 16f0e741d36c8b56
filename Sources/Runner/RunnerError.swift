/// Errors of the reference runner: each names the component or file and what to fix.
public enum RunnerError: Error, CustomStringConvertible, Sendable {
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .invalidInput(message): return message
        }
    }
}
