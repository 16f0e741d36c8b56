import Dispatch
import Testing
@testable import Runner

@Suite("Buffer pool")
struct BufferPoolTests {
    static func base(_ t: Tensor) -> UnsafePointer<Float>? { t.withUnsafeBufferPointer { $0.baseAddress } }

    @Test("a dropped tensor's buffer serves the next tensor of the same element count, not of another")
    func reusesBySize() {
        let pool = BufferPool(capacity: 1 << 20)
        BufferPool.$current.withValue(pool) {
            var first: Tensor? = Tensor(zeros: [4, 8])
            let address = first.map(Self.base)
            first = nil
            #expect(pool.statistics.pooledBuffers == 1)
            #expect(pool.statistics.pooledBytes == 32 * MemoryLayout<Float>.stride)
            let other = Tensor(zeros: [33])   // another size: fresh
            let same = Tensor(zeros: [8, 4])   // same count, other shape: reused
            #expect(Self.base(same) == address)
            #expect(Self.base(other) != address)
            let s = pool.statistics
            #expect(s.freshAllocations == 2 && s.reuses == 1 && s.pooledBuffers == 0 && s.pooledBytes == 0)
            #expect(same.count == 32 && other.count == 33)
        }
    }

    @Test("a reused buffer is cleared by Tensor(zeros:) and filled by Tensor(repeating:)")
    func reusedBuffersAreInitialized() {
        let pool = BufferPool(capacity: 1 << 20)
        BufferPool.$current.withValue(pool) {
            do { _ = Tensor(repeating: .nan, shape: [100]) }
            #expect(Tensor(zeros: [100]).storage == [Float](repeating: 0, count: 100))
            do { _ = Tensor(repeating: .nan, shape: [100]) }
            #expect(Tensor(repeating: 2.5, shape: [10, 10]).storage == [Float](repeating: 2.5, count: 100))
            #expect(pool.statistics.freshAllocations == 1)
        }
    }

    @Test("idle bytes stay under the capacity: the least recently returned buffers are evicted first")
    func capacityEvictsOldest() {
        let sizes = [1000, 1001, 1002, 1003]
        let bytes = sizes.map(BufferPool.byteCount)
        let pool = BufferPool(capacity: bytes.reduce(0, +) - 1)
        BufferPool.$current.withValue(pool) {
            do {
                let tensors = sizes.map { Tensor(zeros: [$0]) }
                _ = tensors
            }   // returned in order 1000, 1001, 1002, 1003: 1000 had to go
            var s = pool.statistics
            #expect(s.evictions == 1 && s.pooledBuffers == 3)
            #expect(s.pooledBytes == bytes[1...].reduce(0, +))
            #expect(s.pooledBytes <= pool.capacity)
            _ = Tensor(zeros: [1000])
            #expect(pool.statistics.freshAllocations == 5)
            _ = Tensor(zeros: [1003])
            #expect(pool.statistics.reuses == 1)

            // A buffer larger than the whole capacity is freed at once.
            s = pool.statistics
            do { _ = Tensor(zeros: [pool.capacity]) }
            #expect(pool.statistics.pooledBuffers == s.pooledBuffers)
            #expect(pool.statistics.pooledBytes <= pool.capacity)

            // Lowering the capacity evicts at once.
            pool.capacity = bytes[3]
            #expect(pool.statistics.pooledBytes <= bytes[3])
            #expect(pool.statistics.pooledBuffers == 1)
        }
    }

    @Test("drain frees every idle buffer and keeps the counters; tensors still alive come back afterwards")
    func drainEmptiesThePool() {
        let pool = BufferPool(capacity: 1 << 20)
        BufferPool.$current.withValue(pool) {
            var alive: Tensor? = Tensor(zeros: [64])
            do { _ = [Tensor(zeros: [10]), Tensor(zeros: [20])] }
            #expect(pool.statistics.pooledBuffers == 2)
            pool.drain()
            var s = pool.statistics
            #expect(s.pooledBuffers == 0 && s.pooledBytes == 0 && s.freshAllocations == 3)
            _ = Tensor(zeros: [10])
            #expect(pool.statistics.freshAllocations == 4)
            alive = nil
            s = pool.statistics
            #expect(alive == nil && s.pooledBuffers == 2)
        }
    }

    @Test("concurrent takes and returns from many threads neither lose nor share a buffer")
    func threadSafety() {
        let pool = BufferPool(capacity: 64 << 10)
        let threads = 8, rounds = 300
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for round in 0..<rounds {
                let count = 512 * (1 + (thread + round) % 5)
                let buffer = pool.take(count: count)
                let mark = Float(thread * rounds + round)
                buffer.update(repeating: mark)
                // Another thread holding the same buffer would overwrite the mark.
                if buffer.contains(where: { $0 != mark }) { failures.add() }
                pool.give(buffer)
            }
        }
        let s = pool.statistics
        #expect(failures.value == 0)
        #expect(s.freshAllocations + s.reuses == threads * rounds)
        #expect(s.pooledBuffers == s.freshAllocations - s.evictions)
        #expect(s.pooledBytes <= pool.capacity && s.peakPooledBytes <= pool.capacity)
        #expect(s.reuses > 0)
        pool.drain()
        #expect(pool.statistics.pooledBytes == 0)
    }
}

/// A thread-safe counter for the concurrency test.
final class Counter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "counter")
    private var count = 0
    func add() { queue.sync { count += 1 } }
    var value: Int { queue.sync { count } }
}
