/// How a checkpoint is split into shard files, following transformers 4.37's `shard_checkpoint` and the file
/// names `save_pretrained` gives them.
enum ShardPlan {
    /// Splits in the given order: a new shard starts when the next tensor would push the current one past
    /// `maxShardBytes` and the current one already holds a tensor.
    static func split(_ tensors: [OutputTensor], maxShardBytes: Int, path: String) throws -> [[OutputTensor]] {
        var shards: [[OutputTensor]] = [[]]
        var size = 0
        for t in tensors {
            let bytes = try FileLayout.byteCount(dtype: t.dtype, shape: t.shape, name: t.name, path: path)
            let (next, overflow) = size.addingReportingOverflow(bytes)
            if (overflow || next > maxShardBytes) && !(shards[shards.count - 1].isEmpty) {
                shards.append([])
                size = 0
            }
            shards[shards.count - 1].append(t)
            size += bytes
        }
        return shards
    }

    /// `model-00001-of-00003.safetensors`…: five digits, as transformers formats them (`{idx:05d}`).
    static func shardNames(baseName: String, count: Int) -> [String] {
        (1...count).map { "\(baseName)-\(fiveDigits($0))-of-\(fiveDigits(count)).safetensors" }
    }

    static func fiveDigits(_ n: Int) -> String {
        let s = String(n)
        return s.count >= 5 ? s : String(repeating: "0", count: 5 - s.count) + s
    }

    /// Parses `<base>-NNNNN-of-MMMMM.safetensors` into (base, index, count).
    static func parseShardName(_ name: String) -> (base: String, index: Int, count: Int)? {
        let suffix = ".safetensors"
        guard name.hasSuffix(suffix) else { return nil }
        let stem = Array(name.utf8.dropLast(suffix.utf8.count))
        // "-NNNNN-of-MMMMM" is 15 bytes (five digits each, as transformers' regex `-\d{5}-of-\d{5}` wants).
        guard stem.count > 15 else { return nil }
        let tail = Array(stem.suffix(15))
        let digits = { (r: Range<Int>) -> Int? in
            let bytes = tail[r]
            guard bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            return Int(String(decoding: bytes, as: UTF8.self))
        }
        guard tail[0] == UInt8(ascii: "-"), Array(tail[6..<10]) == Array("-of-".utf8),
              let index = digits(1..<6), let count = digits(10..<15) else { return nil }
        return (String(decoding: stem.dropLast(15), as: UTF8.self), index, count)
    }

    /// Removes what remains of an earlier checkpoint named `baseName` in `folder`: shard files not in `keeping`
    /// (as transformers' save_pretrained does), its index when the new checkpoint is a single file, and the
    /// single file when the new one is sharded (loaders prefer a single file over an index).
    static func removeStaleFiles(in folder: String, baseName: String, keeping: Set<String>, indexWritten: Bool) {
        guard let names = try? FileSystem.list(folder) else { return }
        for name in names where !keeping.contains(name) {
            let stale: Bool
            if let parsed = parseShardName(name) {
                stale = parsed.base == baseName
            } else {
                stale = indexWritten ? name == "\(baseName).safetensors" : name == "\(baseName).safetensors.index.json"
            }
            let path = FileSystem.join(folder, name)
            if stale && FileSystem.kind(path) == .file { FileSystem.remove(path) }
        }
    }
}
