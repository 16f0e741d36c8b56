/// The three LAPACK routines the LoRA tools need, from the OpenBLAS that `BLAS` loaded (Debian's libopenblas0
/// exports reference LAPACK compiled with gfortran: column-major, 32-bit integers, a hidden length argument
/// after the character arguments). Symbols are looked up once, on first use.
///
/// Everything here works on column-major buffers, as LAPACK does. A row-major (m×n) matrix is the column-major
/// (n×m) matrix of its transpose, which `LowRank` uses to avoid copies.
public enum LAPACK {
    private typealias SgesddFunction = @convention(c) (
        UnsafePointer<CChar>, UnsafePointer<Int32>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?, UnsafePointer<Int32>, UnsafeMutablePointer<Float>?,
        UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Int32>,
        UnsafeMutablePointer<Int32>, Int
    ) -> Void
    private typealias SgeqrfFunction = @convention(c) (
        UnsafePointer<Int32>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Int32>
    ) -> Void
    private typealias SorgqrFunction = @convention(c) (
        UnsafePointer<Int32>, UnsafePointer<Int32>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>,
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Int32>
    ) -> Void

    private struct Routines: @unchecked Sendable {
        let sgesdd: SgesddFunction
        let sgeqrf: SgeqrfFunction
        let sorgqr: SorgqrFunction
    }

    private static let routines: Result<Routines, LAPACKError> = {
        if case let .failure(error) = Result(catching: { try BLAS.ensureAvailable() }) {
            return .failure(.unavailable(reason: "\(error)"))
        }
        guard let sgesdd = BLAS.symbol("sgesdd_"), let sgeqrf = BLAS.symbol("sgeqrf_"), let sorgqr = BLAS.symbol("sorgqr_") else {
            return .failure(.unavailable(reason: "the loaded OpenBLAS exports no LAPACK (sgesdd_, sgeqrf_, sorgqr_); "
                                         + "install Debian's libopenblas0-pthread, which includes it"))
        }
        return .success(Routines(sgesdd: unsafeBitCast(sgesdd, to: SgesddFunction.self),
                                 sgeqrf: unsafeBitCast(sgeqrf, to: SgeqrfFunction.self),
                                 sorgqr: unsafeBitCast(sorgqr, to: SorgqrFunction.self)))
    }()

    /// Throws when OpenBLAS or its LAPACK part is missing; call before any of the routines.
    public static func ensureAvailable() throws {
        if case let .failure(error) = routines { throw error }
    }

    private static func loaded() throws -> Routines {
        switch routines {
        case let .success(r): return r
        case let .failure(error): throw error
        }
    }

    /// The thin SVD of the column-major (m×n) matrix `a` (destroyed), by divide and conquer (`sgesdd`, jobz "S"):
    /// `a = u · diag(s) · vt` with u (m×p) column-major (ld m), s descending (p), vt (p×n) column-major (ld p),
    /// p = min(m, n). With `vectors: false` only `s` is computed (`u` and `vt` are empty).
    public static func sgesdd(_ a: inout [Float], m: Int, n: Int, vectors: Bool = true) throws
        -> (u: [Float], s: [Float], vt: [Float]) {
        let lib = try loaded()
        let p = min(m, n)
        guard p > 0 else { return ([], [], []) }
        precondition(a.count == m * n, "sgesdd: buffer holds \(a.count) values, not \(m)×\(n)")
        var s = [Float](repeating: 0, count: p)
        var u = [Float](repeating: 0, count: vectors ? m * p : 1)
        var vt = [Float](repeating: 0, count: vectors ? p * n : 1)
        var iwork = [Int32](repeating: 0, count: 8 * p)
        var mm = Int32(m), nn = Int32(n), lda = Int32(max(1, m))
        var ldu = Int32(vectors ? max(1, m) : 1), ldvt = Int32(vectors ? max(1, p) : 1)
        var info: Int32 = 0
        let jobz: [CChar] = [CChar(UInt8(ascii: vectors ? "S" : "N")), 0]
        func call(_ work: inout [Float], _ lwork: Int32) {
            var lw = lwork
            a.withUnsafeMutableBufferPointer { a in
                guard let a = a.baseAddress else { return }
                lib.sgesdd(jobz, &mm, &nn, a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lw, &iwork, &info, 1)
            }
        }
        var query = [Float](repeating: 0, count: 1)
        call(&query, -1)
        guard info == 0 else { throw LAPACKError.failed(routine: "sgesdd", info: Int(info)) }
        var work = [Float](repeating: 0, count: max(1, Int(query[0]) + 1))
        call(&work, Int32(work.count))
        guard info == 0 else { throw LAPACKError.failed(routine: "sgesdd", info: Int(info)) }
        return (vectors ? u : [], s, vectors ? vt : [])
    }

    /// Replaces the column-major (m×n) matrix `a` (m ≥ n) with the first n columns of Q of its QR factorization
    /// (`sgeqrf` then `sorgqr`); returns R (n×n, row-major, upper triangular).
    @discardableResult
    public static func orthonormalize(_ a: inout [Float], m: Int, n: Int) throws -> [Float] {
        let lib = try loaded()
        precondition(m >= n && a.count == m * n, "orthonormalize needs a tall column-major m×n buffer")
        guard n > 0 else { return [] }
        var mm = Int32(m), nn = Int32(n), lda = Int32(m), info: Int32 = 0
        var tau = [Float](repeating: 0, count: n)
        var query: Float = 0
        var minusOne: Int32 = -1
        a.withUnsafeMutableBufferPointer { guard let p = $0.baseAddress else { return }; lib.sgeqrf(&mm, &nn, p, &lda, &tau, &query, &minusOne, &info) }
        guard info == 0 else { throw LAPACKError.failed(routine: "sgeqrf", info: Int(info)) }
        var work = [Float](repeating: 0, count: max(1, Int(query) + 1))
        var lwork = Int32(work.count)
        a.withUnsafeMutableBufferPointer { guard let p = $0.baseAddress else { return }; lib.sgeqrf(&mm, &nn, p, &lda, &tau, &work, &lwork, &info) }
        guard info == 0 else { throw LAPACKError.failed(routine: "sgeqrf", info: Int(info)) }
        var r = [Float](repeating: 0, count: n * n)
        for j in 0..<n { for i in 0...j { r[i * n + j] = a[j * m + i] } }
        var kk = Int32(n)
        a.withUnsafeMutableBufferPointer { guard let p = $0.baseAddress else { return }; lib.sorgqr(&mm, &nn, &kk, p, &lda, &tau, &query, &minusOne, &info) }
        guard info == 0 else { throw LAPACKError.failed(routine: "sorgqr", info: Int(info)) }
        if Int(query) + 1 > work.count { work = [Float](repeating: 0, count: Int(query) + 1) }
        lwork = Int32(work.count)
        a.withUnsafeMutableBufferPointer { guard let p = $0.baseAddress else { return }; lib.sorgqr(&mm, &nn, &kk, p, &lda, &tau, &work, &lwork, &info) }
        guard info == 0 else { throw LAPACKError.failed(routine: "sorgqr", info: Int(info)) }
        return r
    }
}

public enum LAPACKError: Error, CustomStringConvertible, Sendable, Equatable {
    case unavailable(reason: String)
    /// A routine returned `info != 0` (negative: a bad argument, a bug here; positive: no convergence).
    case failed(routine: String, info: Int)

    public var description: String {
        switch self {
        case let .unavailable(reason): return "LAPACK is unavailable: \(reason)"
        case let .failed(routine, info):
            return info > 0 ? "LAPACK \(routine) did not converge (info \(info)); the matrix may hold NaN or infinity"
                            : "LAPACK \(routine) rejected argument \(-info) (a bug in ea-weights)"
        }
    }
}
