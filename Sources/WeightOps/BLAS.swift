#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one matrix product the weight operations need, `C = alpha * A @ B + beta * C` (row-major float32),
/// done by OpenBLAS when it can be loaded, else by a plain blocked loop (correct, much slower).
///
/// OpenBLAS is opened with dlopen rather than linked: its constructor picks CPU kernels when the library
/// loads, and this OpenBLAS (0.3.21) does not recognise recent AVX-512 Xeons and falls back to its
/// Prescott kernels (4x slower). Setting OPENBLAS_CORETYPE before the load fixes that, which a linked
/// library would not allow. A user's own OPENBLAS_CORETYPE is respected.
public enum BLAS {
    public enum Backend: String, Sendable { case openBLAS = "OpenBLAS", portable = "portable" }

    private typealias SGEMM = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float,
        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    private typealias CoreName = @convention(c) () -> UnsafePointer<CChar>?

    private struct Library: @unchecked Sendable {
        let sgemm: SGEMM
        let coreName: String
    }

    private static let library: Library? = load()

    /// Which implementation runs, with OpenBLAS's core name ("OpenBLAS (SkylakeX)").
    public static var backendDescription: String {
        guard let library else { return Backend.portable.rawValue }
        return "\(Backend.openBLAS.rawValue) (\(library.coreName))"
    }

    public static var backend: Backend { library == nil ? .portable : .openBLAS }

    private static func load() -> Library? {
        if getenv("OPENBLAS_CORETYPE") == nil, let core = coreTypeForThisCPU() {
            setenv("OPENBLAS_CORETYPE", core, 0)
        }
        for name in ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL) else { continue }
            guard let symbol = dlsym(handle, "cblas_sgemm") else { continue }
            let sgemm = unsafeBitCast(symbol, to: SGEMM.self)
            var coreName = "unknown core"
            if let nameSymbol = dlsym(handle, "openblas_get_corename"),
               let text = unsafeBitCast(nameSymbol, to: CoreName.self)() {
                coreName = String(cString: text)
            }
            return Library(sgemm: sgemm, coreName: coreName)
        }
        return nil
    }

    /// OpenBLAS's name for the best kernel set this CPU supports, from /proc/cpuinfo's flags.
    private static func coreTypeForThisCPU() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// `c[m×n] = alpha * a[m×k] @ b[k×n] + beta * c`, all row-major and contiguous.
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
        beta: Float, c: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "sgemm buffers too small")
        guard m > 0, n > 0 else { return }
        if let library, m <= Int(Int32.max), n <= Int(Int32.max), k <= Int(Int32.max) {
            // CblasRowMajor = 101, CblasNoTrans = 111.
            library.sgemm(101, 111, 111, Int32(m), Int32(n), Int32(k), alpha,
                          a.baseAddress, Int32(max(k, 1)), b.baseAddress, Int32(n), beta, c.baseAddress, Int32(n))
            return
        }
        portableSgemm(m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
    }

    /// Row-by-row accumulation: each output row is a sum of scaled rows of `b`, which vectorizes.
    static func portableSgemm(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
        beta: Float, c: UnsafeMutableBufferPointer<Float>
    ) {
        var row = [Float](repeating: 0, count: n)
        for i in 0..<m {
            for j in 0..<n { row[j] = 0 }
            for p in 0..<k {
                let s = a[i * k + p]
                if s == 0 { continue }
                let base = p * n
                for j in 0..<n { row[j] += s * b[base + j] }
            }
            let base = i * n
            if beta == 0 {
                for j in 0..<n { c[base + j] = alpha * row[j] }
            } else {
                for j in 0..<n { c[base + j] = alpha * row[j] + beta * c[base + j] }
            }
        }
    }
}
