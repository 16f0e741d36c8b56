/// A bench run could not build or time its synthetic inputs.
public enum BenchError: Error, CustomStringConvertible, Sendable {
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .failed(path, reason): return "\(path): \(reason)"
        }
    }
}
