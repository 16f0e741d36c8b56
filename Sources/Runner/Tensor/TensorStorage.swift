/// The element buffer of one or more `Tensor` values (shared until one of them writes: copy-on-write).
/// It owns a buffer from a `BufferPool` and gives it back when the last tensor using it is gone.
final class TensorStorage: @unchecked Sendable {
    // Immutable after init; the elements are only written through a uniquely referenced storage.
    let buffer: UnsafeMutableBufferPointer<Float>
    let pool: BufferPool

    /// `count` floats with arbitrary contents from `pool`.
    init(uninitializedCount count: Int, pool: BufferPool) {
        self.pool = pool
        buffer = pool.take(count: count)
    }

    deinit {
        pool.give(buffer)
    }

    /// A new storage (from the current pool) holding the same values.
    func copy() -> TensorStorage {
        let other = TensorStorage(uninitializedCount: buffer.count, pool: BufferPool.current)
        if let source = buffer.baseAddress, let destination = other.buffer.baseAddress {
            destination.update(from: source, count: buffer.count)
        }
        return other
    }
}
