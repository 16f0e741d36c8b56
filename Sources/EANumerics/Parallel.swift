import Foundation
import Dispatch

/// Splits `count` items into contiguous chunks over the machine's cores.
@inlinable
public func parallelChunks(_ count: Int, minimumChunk: Int = 4096, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let workers = min(ProcessInfoCache.activeProcessorCount, max(1, count / minimumChunk))
    if workers <= 1 { body(0..<count); return }
    let chunk = (count + workers - 1) / workers
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        let start = w * chunk
        let end = min(count, start + chunk)
        if start < end { body(start..<end) }
    }
}

/// Runs `body(i)` for i in 0..<count across cores, for independent items of sizable work (rows, heads).
@inlinable
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    if count == 1 || ProcessInfoCache.activeProcessorCount == 1 { for i in 0..<count { body(i) }; return }
    DispatchQueue.concurrentPerform(iterations: count, execute: body)
}

public enum ProcessInfoCache {
    public static let activeProcessorCount: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
#endif

/// Hands out job indices 0..<count to the workers of a parallel loop, each index once, in increasing order.
public final class JobQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var nextJob = 0
    private let count: Int

    public init(count: Int) { self.count = count }

    public func next() -> Int? {
        lock.withLock {
            guard nextJob < count else { return nil }
            defer { nextJob += 1 }
            return nextJob
        }
    }
}
