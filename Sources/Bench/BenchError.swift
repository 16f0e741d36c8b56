import Foundation

/// A bench run could not build or time its synthetic inputs.
public enum BenchError: Error, CustomStringConvertible, Sendable {
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .failed(path, reason): return "\(path): \(reason)"
        }
    }
}

/// The folder a bench writes its synthetic model into, created with its parents; a failure names the folder.
enum BenchFolder {
    static func create(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw BenchError.failed(path: path, reason: "cannot create the folder for the synthetic model: "
                                        + "\(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
    }
}
