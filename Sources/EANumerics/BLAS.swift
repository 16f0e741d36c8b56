#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// OpenBLAS, loaded at first use with `dlopen` (the only BLAS entry point of the project).
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent AVX-512 Xeons and silently falls back to kernels about
/// 5x slower; `OPENBLAS_CORETYPE` fixes that but is read only when the library loads. Loading it ourselves,
/// after setting the variable on CPUs with AVX-512, makes that reliable in every process (CLI and tests).
///
/// OpenBLAS runs single-threaded; a large product is split into column (or row) panels computed on the cores
/// by our own parallel loop, the one thread pool of the project. OpenBLAS's own workers spin in `sched_yield`
/// between and after products, taking the core from our kernels (measured: a sixth of a real-size step, and a
/// T5-XXL encode 3× slower than PyTorch when another process held a core). Each element of C is still one
/// OpenBLAS dot product over the same K, so the results do not depend on the split.
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

    /// How many panels a large product is split into (at most the cores; 1 keeps products on the calling
    /// thread, for commands that keep the other core for other work).
    public static func setThreadCount(_ n: Int) {
        threads.withLock { $0 = max(1, min(n, ProcessInfoCache.activeProcessorCount)) }
    }

    private static let threads = Mutex(ProcessInfoCache.activeProcessorCount)
    /// Below this many multiply-adds a product stays on one thread (the split's cost is a few microseconds).
    private static let splitMinimum = 1 << 22

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
        let (ta, tb) = (transA == .none ? Int32(111) : 112, transB == .none ? Int32(111) : 112)
        let workers = m * n * k >= splitMinimum ? threads.withLock { $0 } : 1
        if workers <= 1 {
            lib.sgemm(101, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        // Panels of C: columns when C is wide (op(B)'s columns are B's rows when transposed), else rows.
        if n >= m {
            let width = (n + workers - 1) / workers
            let panel = (width + 15) / 16 * 16
            parallelChunks(n, minimumChunk: panel) { columns in
                let bOffset = transB == .none ? columns.lowerBound : columns.lowerBound * ldb
                lib.sgemm(101, ta, tb, Int32(m), Int32(columns.count), Int32(k), alpha, a, Int32(lda), b + bOffset, Int32(ldb),
                          beta, c + columns.lowerBound, Int32(ldc))
            }
        } else {
            let height = (m + workers - 1) / workers
            parallelChunks(m, minimumChunk: height) { rows in
                let aOffset = transA == .none ? rows.lowerBound * lda : rows.lowerBound
                lib.sgemm(101, ta, tb, Int32(rows.count), Int32(n), Int32(k), alpha, a + aOffset, Int32(lda), b, Int32(ldb),
                          beta, c + rows.lowerBound * ldc, Int32(ldc))
            }
        }
    }

    private static func load() -> Result<Library, NumericsError> {
        // A family without AVX-512 is replaced too: machine images set OPENBLAS_CORETYPE=Haswell for AMD CPUs,
        // which on an AVX-512 EPYC halves the FP32 rate (measured: 239 against 435 GFLOP/s on two cores).
        let chosen = getenv("OPENBLAS_CORETYPE").map { String(cString: $0).lowercased() }
        if !(chosen.map(avx512Families.contains) ?? false), cpuHasAVX512() {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
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
        // OpenBLAS computes on the calling thread only; `sgemm` spreads large products over the cores.
        if let setThreads = dlsym(handle, "openblas_set_num_threads") {
            unsafeBitCast(setThreads, to: SetThreadsFunction.self)(1)
        }
        return .success(Library(sgemm: unsafeBitCast(sgemm, to: SgemmFunction.self), coreName: coreName,
                                handle: handle))
    }

    /// OpenBLAS's kernel families that use AVX-512 (`OPENBLAS_CORETYPE` values, lowercased).
    private static let avx512Families: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    private static func cpuHasAVX512() -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        return flags.split(separator: " ").contains("avx512f")
    }
}
