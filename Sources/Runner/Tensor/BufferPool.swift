import Foundation

/// Float buffers kept for reuse, keyed by element count. A denoising step allocates the same activation sizes in
/// the same order as the previous one; at real size they are hundreds of MB each, past glibc's mmap threshold,
/// so without reuse every kernel output would cost an mmap, page faults and zeroing of fresh pages, and an
/// munmap when it is dropped. With the pool, a step after the first takes every buffer from the idle set
/// (llama2.c's "RunState: buffers allocated once", kept implicit so kernels still return values).
///
/// Idle buffers are bounded by `capacity` bytes: returning one that would exceed it evicts the least recently
/// returned buffers first (a buffer larger than the whole capacity is freed at once). Thread-safe; buffers go
/// back to the pool they came from when their `TensorStorage` is released.
public final class BufferPool: @unchecked Sendable {
    /// Counters since the pool was made; `drain()` keeps them.
    public struct Statistics: Sendable, Equatable {
        /// Buffers taken from the system (allocations the pool could not serve).
        public var freshAllocations = 0
        /// Bytes of those allocations.
        public var freshBytes = 0
        /// Buffers served from the idle set.
        public var reuses = 0
        /// Idle buffers freed to keep under the capacity.
        public var evictions = 0
        /// Idle buffers and their bytes right now.
        public var pooledBuffers = 0
        public var pooledBytes = 0
        /// The most bytes held idle at once.
        public var peakPooledBytes = 0
    }

    /// The process-wide pool the runner uses unless a task binds another to `current`.
    public static let shared = BufferPool(capacity: defaultCapacity)

    /// The pool tensors are allocated from in this task: `shared` unless bound with `BufferPool.$current.withValue`
    /// (tests use a private pool so their counters see only their own work).
    @TaskLocal public static var current: BufferPool = shared

    /// A quarter of physical memory: room for every activation size of a real-size step, yet never most of RAM.
    public static var defaultCapacity: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 4) }

    /// Buffers are aligned for 512-bit vector loads.
    static let alignment = 64

    private struct Idle {
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
        let stamp: UInt64
    }

    private let lock = NSLock()
    private var capacityBytes: Int
    private var idle: [Int: [Idle]] = [:]   // by element count, oldest first
    private var clock: UInt64 = 0
    private var counters = Statistics()

    public init(capacity: Int) {
        capacityBytes = max(0, capacity)
    }

    deinit {
        for list in idle.values { for entry in list { entry.pointer.deallocate() } }
    }

    /// Upper bound on idle bytes; lowering it evicts at once.
    public var capacity: Int {
        get { lock.withLock { capacityBytes } }
        set {
            let evicted: [UnsafeMutableRawPointer] = lock.withLock {
                capacityBytes = max(0, newValue)
                return evict(toFit: 0)
            }
            for pointer in evicted { pointer.deallocate() }
        }
    }

    public var statistics: Statistics { lock.withLock { counters } }

    /// Frees every idle buffer (buffers in use return to the pool later, as usual).
    public func drain() {
        let freed: [UnsafeMutableRawPointer] = lock.withLock {
            let all = idle.values.flatMap { $0.map(\.pointer) }
            idle.removeAll()
            counters.pooledBuffers = 0
            counters.pooledBytes = 0
            return all
        }
        for pointer in freed { pointer.deallocate() }
    }

    /// A buffer of `count` floats with arbitrary contents.
    func take(count: Int) -> UnsafeMutableBufferPointer<Float> {
        let bytes = Self.byteCount(count)
        let reused: UnsafeMutableRawPointer? = lock.withLock {
            guard var list = idle[count], let entry = list.popLast() else { return nil }
            idle[count] = list.isEmpty ? nil : list
            counters.reuses += 1
            counters.pooledBuffers -= 1
            counters.pooledBytes -= entry.bytes
            return entry.pointer
        }
        let pointer: UnsafeMutableRawPointer
        if let reused {
            pointer = reused
        } else {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
            lock.withLock {
                counters.freshAllocations += 1
                counters.freshBytes += bytes
            }
        }
        return UnsafeMutableBufferPointer(start: pointer.bindMemory(to: Float.self, capacity: count), count: count)
    }

    /// Takes back a buffer from `take(count:)`; the caller no longer uses it.
    func give(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard let base = buffer.baseAddress else { return }
        let pointer = UnsafeMutableRawPointer(base)
        let bytes = Self.byteCount(buffer.count)
        let freed: [UnsafeMutableRawPointer] = lock.withLock {
            guard bytes <= capacityBytes else { return [pointer] }
            var evicted = evict(toFit: bytes)
            if counters.pooledBytes + bytes > capacityBytes {
                evicted.append(pointer)
                return evicted
            }
            clock += 1
            idle[buffer.count, default: []].append(Idle(pointer: pointer, bytes: bytes, stamp: clock))
            counters.pooledBuffers += 1
            counters.pooledBytes += bytes
            counters.peakPooledBytes = max(counters.peakPooledBytes, counters.pooledBytes)
            return evicted
        }
        for pointer in freed { pointer.deallocate() }
    }

    /// Removes the least recently returned idle buffers until `incoming` more bytes fit; the caller frees them
    /// outside the lock. Called with the lock held.
    private func evict(toFit incoming: Int) -> [UnsafeMutableRawPointer] {
        var evicted: [UnsafeMutableRawPointer] = []
        while counters.pooledBytes + incoming > capacityBytes {
            // Each list is oldest first, so the oldest entry overall is the oldest of the list heads.
            guard let oldest = idle.min(by: { $0.value[0].stamp < $1.value[0].stamp }) else { break }
            var list = oldest.value
            let entry = list.removeFirst()
            idle[oldest.key] = list.isEmpty ? nil : list
            counters.pooledBuffers -= 1
            counters.pooledBytes -= entry.bytes
            counters.evictions += 1
            evicted.append(entry.pointer)
        }
        return evicted
    }

    /// At least one byte, so an empty tensor still has a valid base address.
    static func byteCount(_ count: Int) -> Int {
        max(1, count) * MemoryLayout<Float>.stride
    }
}
