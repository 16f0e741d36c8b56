/// What can go wrong below the math: the BLAS library the kernels need is missing.
public enum NumericsError: Error, CustomStringConvertible, Sendable, Equatable {
    case blasUnavailable(library: String, reason: String)

    public var description: String {
        switch self {
        case let .blasUnavailable(library, reason):
            let oneLine = reason.split(whereSeparator: \.isNewline).joined(separator: " ")
            return "OpenBLAS could not be loaded from \(library) (\(oneLine)); install Debian's libopenblas0 "
                + "(apt-get install libopenblas0), or name another build in \(BLAS.libraryVariable)"
        }
    }
}
