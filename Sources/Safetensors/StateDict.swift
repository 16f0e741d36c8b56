/// A read-only state dict: tensor names to zero-copy views. Implemented by one file and by sharded checkpoints.
public protocol StateDict: Sendable {
    /// Where it was opened from (a file, an index, a folder), for messages.
    var path: String { get }
    /// Tensor names, sorted.
    var keys: [String] { get }
    /// Merged `__metadata__` (for shards, the index's `metadata` plus the first shard's).
    var metadata: [String: String] { get }
    func info(_ name: String) -> TensorInfo?
    func tensor(_ name: String) throws -> TensorView
}

extension StateDict {
    public func contains(_ name: String) -> Bool { info(name) != nil }
    public var count: Int { keys.count }
    public var allInfos: [TensorInfo] { keys.compactMap { info($0) } }
    public var parameterCount: Int { allInfos.reduce(0) { $0 + $1.elementCount } }
    public var byteCount: Int { allInfos.reduce(0) { $0 + $1.byteCount } }
}
