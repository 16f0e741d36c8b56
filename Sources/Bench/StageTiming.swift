import Foundation
import EANumerics

/// One timed stage of the runner, as `ea-weights bench STAGE --json` prints it.
public struct StageTiming: Sendable, Codable {
    public var seconds: Double
    public var gflops: Double
    /// Achieved GFLOP/s over the FP32 sgemm peak measured on this machine just before.
    public var peakFraction: Double
    public var peakGflops: Double
    /// The OpenBLAS kernel set that ran (SkylakeX, Haswell, …).
    public var blasCore: String
    /// The largest anonymous resident memory (RssAnon) seen during the stage, sampled every 10 ms: the weights
    /// are file-backed mappings and do not count.
    public var peakAnonMB: Double

    enum CodingKeys: String, CodingKey {
        case seconds, gflops, peakFraction = "peak_fraction", peakGflops = "peak_gflops", blasCore = "blas_core"
        case peakAnonMB = "peak_anon_mb"
    }

    /// Measures the FP32 peak, then times `body`, which does `flops` floating-point operations.
    public static func measure(flops: Double, _ body: () throws -> Void) throws -> StageTiming {
        try BLAS.ensureAvailable()
        let peak = MatmulPeak.gflops()
        let sampler = AnonymousMemorySampler()
        let start = Date()
        try body()
        let seconds = Date().timeIntervalSince(start)
        let anon = sampler.stop()
        let gflops = flops / seconds / 1e9
        return StageTiming(seconds: seconds, gflops: gflops, peakFraction: gflops / peak, peakGflops: peak,
                           blasCore: BLAS.coreDescription, peakAnonMB: Double(anon) / 1_048_576)
    }
}

/// The FP32 matrix-product rate of this machine: the best of three 2048³ sgemms on all cores.
public enum MatmulPeak {
    public static func gflops(size n: Int = 2048) -> Double {
        var a = [Float](repeating: 0.5, count: n * n), c = a
        a[0] = 1
        var best = Double.infinity
        for _ in 0..<3 {
            let start = Date()
            a.withUnsafeBufferPointer { ap in c.withUnsafeMutableBufferPointer { cp in
                BLAS.sgemm(.none, .none, m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: ap.baseAddress!, ldb: n,
                           c: cp.baseAddress!, ldc: n)
            } }
            best = min(best, Date().timeIntervalSince(start))
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}

/// Samples this process's RssAnon (from /proc/self/status) on a background thread until `stop`.
final class AnonymousMemorySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init() {
        peak = Self.anonymousBytes()
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let now = Self.anonymousBytes()
                lock.withLock { peak = max(peak, now) }
                usleep(10_000)
            }
            done.signal()
        }
    }

    /// Stops sampling; returns the peak in bytes.
    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { max(peak, Self.anonymousBytes()) }
    }

    static func anonymousBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return kib * 1024
    }
}
