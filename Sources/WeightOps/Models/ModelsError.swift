/// Errors of arranging and checking a `models/` tree (`prepare`, `verify`, the manifest): each names the file
/// and what to do about it.
public enum ModelsError: Error, CustomStringConvertible, Sendable, Equatable {
    case cannotRead(path: String, reason: String)
    case notFound(path: String, what: String)
    case wrongKind(path: String, option: String, expected: String, actual: String)
    case invalidWeights(path: String, reason: String)
    case conflict(path: String, reason: String)
    case invalidManifest(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case invalidRequest(reason: String)
    case cancelled(path: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .notFound(path, what):
            return "\(path): no such \(what)"
        case let .wrongKind(path, option, expected, actual):
            return "\(path): given as \(option) but it is a \(actual) checkpoint, not a \(expected); pass it with the option for its kind"
        case let .invalidWeights(path, reason):
            return "\(path): \(reason)"
        case let .conflict(path, reason):
            return "\(path): \(reason)"
        case let .invalidManifest(path, reason):
            return "\(path): invalid manifest: \(reason); run `ea-weights prepare` again to rewrite it"
        case let .writeFailed(path, reason):
            return "\(path): write failed: \(reason)"
        case let .invalidRequest(reason):
            return reason
        case let .cancelled(path):
            return "\(path): interrupted; nothing was left behind"
        }
    }
}
