#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// OpenBLAS, loaded at first use with `dlopen` (the only BLAS entry point of the project).
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent AVX-512 Xeons and silently falls back to kernels about
/// 5x slower; `OPENBLAS_CORETYPE` fixes that but is read only when the library loads. Loading it ourselves,
/// after setting the variable on CPUs with AVX-512, makes that reliable in every process (CLI and tests).
public enum BLAS {
    public enum Transpose { case none, transpose }

    private typealias SgemmFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float,
        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    private typealias CoreNameFunction = @convention(c) () -> UnsafePointer<CChar>?
    private typealias SetThreadsFunction = @convention(c) (Int32) -> Void

    private struct Library: @unchecked Sendable {
        let sgemm: SgemmFunction
        let coreName: String
        let setThreads: SetThreadsFunction?
        /// The dlopen handle, for the LAPACK routines the same library exports (see `LAPACK`).
        let handle: UnsafeMutableRawPointer
    }

    private static let library: Result<Library, NumericsError> = load()

    /// The environment variable naming another OpenBLAS build to load (a path or a soname).
    public static let libraryVariable = "EA_WEIGHTS_OPENBLAS"

    /// The OpenBLAS kernel family in use (e.g. "SkylakeX"), or the reason OpenBLAS could not be loaded.
    public static var coreDescription: String {
        switch library {
        case let .success(lib): return lib.coreName
        case let .failure(error): return "unavailable (\(error))"
        }
    }

    /// Throws when OpenBLAS cannot be loaded, naming the package to install. Every entry point that computes
    /// (a model load, a merge) calls it first, so `sgemm` never runs without the library.
    public static func ensureAvailable() throws {
        if case let .failure(error) = library { throw error }
    }

    /// A symbol of the loaded OpenBLAS (nil when it is not loaded or lacks the symbol).
    static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        guard case let .success(lib) = library else { return nil }
        return dlsym(lib.handle, name)
    }

    public static func setThreadCount(_ n: Int) {
        if case let .success(lib) = library { lib.setThreads?(Int32(n)) }
    }

    /// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m×k, op(B) is k×n, C is m×n.
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard case let .success(lib) = library else {
            // There is no slow fallback: callers reach here only after `ensureAvailable()` succeeded.
            preconditionFailure("BLAS.sgemm called although OpenBLAS is unavailable: \(coreDescription)")
        }
        lib.sgemm(101, transA == .none ? 111 : 112, transB == .none ? 111 : 112,
                  Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    private static func load() -> Result<Library, NumericsError> {
        if getenv("OPENBLAS_CORETYPE") == nil, cpuHasAVX512() {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 0)
        }
        let names: [String]
        if let chosen = getenv(libraryVariable).map({ String(cString: $0) }), !chosen.isEmpty {
            names = [chosen]
        } else {
            names = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]
        }
        guard let handle = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_GLOBAL) }).first else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(.blasUnavailable(library: names[0], reason: reason))
        }
        guard let sgemm = dlsym(handle, "cblas_sgemm") else {
            return .failure(.blasUnavailable(library: names[0], reason: "it has no cblas_sgemm"))
        }
        var coreName = "unknown"
        if let p = dlsym(handle, "openblas_get_corename"),
           let name = unsafeBitCast(p, to: CoreNameFunction.self)() {
            coreName = String(cString: name)
        }
        let setThreads = dlsym(handle, "openblas_set_num_threads").map { unsafeBitCast($0, to: SetThreadsFunction.self) }
        return .success(Library(sgemm: unsafeBitCast(sgemm, to: SgemmFunction.self), coreName: coreName, setThreads: setThreads,
                                handle: handle))
    }

    private static func cpuHasAVX512() -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        return flags.split(separator: " ").contains("avx512f")
    }
}
