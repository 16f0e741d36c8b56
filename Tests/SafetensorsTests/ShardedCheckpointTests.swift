import Foundation
import Testing
import Safetensors

@Suite("Sharded checkpoints")
struct ShardedCheckpointTests {
    /// The fixture's shard files, found by listing (nothing depends on their number or names).
    static func fixtureShards() throws -> [String] {
        try folderContents(Fixtures.textEncoder).filter { $0.hasSuffix(".safetensors") }
    }

    static func fixtureIndexName() throws -> String {
        try #require(try folderContents(Fixtures.textEncoder).first { $0.hasSuffix(".safetensors.index.json") })
    }

    /// Copies the fixture's checkpoint files into `folder`.
    static func copyFixture(to folder: String) throws {
        for name in try fixtureShards() + [fixtureIndexName()] {
            try FileManager.default.copyItem(atPath: Fixtures.textEncoder + "/" + name, toPath: folder + "/" + name)
        }
    }

    static func index(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    static func writeIndex(_ object: [String: Any], to path: String) throws {
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    @Test("opens the fixture text encoder through its index and through its folder as one state dict")
    func opensFixture() throws {
        let shardNames = try Self.fixtureShards()
        let shards = try shardNames.map { try SafetensorsFile(path: Fixtures.textEncoder + "/" + $0) }
        let allKeys = shards.flatMap(\.keys).sorted()
        let indexPath = Fixtures.textEncoder + "/" + (try Self.fixtureIndexName())
        let opened: [any StateDict] = [
            try ShardedCheckpoint(indexPath: indexPath),
            try ShardedCheckpoint(folder: Fixtures.textEncoder),
            try openStateDict(path: Fixtures.textEncoder),
            try openStateDict(path: indexPath),
        ]
        let declared = try Self.index(indexPath)
        let totalSize = try #require((declared["metadata"] as? [String: Any])?["total_size"] as? Int)
        for dict in opened {
            #expect(dict is ShardedCheckpoint)
            #expect(dict.keys == allKeys)
            #expect(dict.byteCount == totalSize)
            #expect(dict.metadata["total_size"] == String(totalSize))
            #expect(dict.metadata["format"] == shards[0].metadata["format"])
            for shard in shards {
                for key in shard.keys {
                    #expect(try dict.tensor(key).copyBytes() == shard.tensor(key).copyBytes())
                    #expect(dict.info(key) == shard.info(key))
                }
            }
            #expect(throws: SafetensorsError.self) { try dict.tensor("no.such.tensor") }
        }
        let checkpoint = try ShardedCheckpoint(indexPath: indexPath)
        #expect(checkpoint.shards.count == shardNames.count)
        #expect(checkpoint.index?.weightMap.count == allKeys.count)
        #expect(checkpoint.index?.totalSize == totalSize)
    }

    @Test("opens the fixture's shards without their index (transformers names, complete set)")
    func opensShardsWithoutIndex() throws {
        try withTemporaryFolder { folder in
            try Self.copyFixture(to: folder)
            try FileManager.default.removeItem(atPath: folder + "/" + (try Self.fixtureIndexName()))
            let dict = try openStateDict(path: folder)
            #expect(dict.keys == (try ShardedCheckpoint(folder: Fixtures.textEncoder)).keys)
            // One shard gone: the set is incomplete.
            let shards = try Self.fixtureShards()
            try FileManager.default.removeItem(atPath: folder + "/" + shards[shards.count - 1])
            if shards.count > 1 {
                #expect(throws: SafetensorsError.missingShard(path: folder, shard: shards[shards.count - 1])) { try openStateDict(path: folder) }
            }
        }
    }

    @Test("a missing shard is an error naming the index and the shard")
    func missingShard() throws {
        try withTemporaryFolder { folder in
            try Self.copyFixture(to: folder)
            let shard = try Self.fixtureShards()[0]
            try FileManager.default.removeItem(atPath: folder + "/" + shard)
            let indexPath = folder + "/" + (try Self.fixtureIndexName())
            let error = #expect(throws: SafetensorsError.self) { try ShardedCheckpoint(indexPath: indexPath) }
            #expect(error == .missingShard(path: indexPath, shard: shard))
            #expect(error?.description.contains(shard) == true)
            #expect(error?.description.contains(indexPath) == true)
        }
    }

    @Test("a key mapped to a shard that lacks it is an error naming both")
    func shardLacksTensor() throws {
        try withTemporaryFolder { folder in
            try Self.copyFixture(to: folder)
            let indexPath = folder + "/" + (try Self.fixtureIndexName())
            var index = try Self.index(indexPath)
            var map = try #require(index["weight_map"] as? [String: String])
            let shard = try #require(map.values.sorted().first)
            map["not.in.any.shard"] = shard
            index["weight_map"] = map
            try Self.writeIndex(index, to: indexPath)
            #expect(throws: SafetensorsError.shardLacksTensor(path: indexPath, shard: shard, tensor: "not.in.any.shard")) {
                try ShardedCheckpoint(indexPath: indexPath)
            }
        }
    }

    @Test("a tensor in two shards is an error naming both files, with or without an index")
    func duplicateAcrossShards() throws {
        try withTemporaryFolder { folder in
            let one = folder + "/model-00001-of-00002.safetensors", two = folder + "/model-00002-of-00002.safetensors"
            try SafetensorsWriter().write([.bytes([1], name: "a", dtype: .u8, shape: [1]), .bytes([2], name: "b", dtype: .u8, shape: [1])], to: one)
            try SafetensorsWriter().write([.bytes([3], name: "b", dtype: .u8, shape: [1])], to: two)
            #expect(throws: SafetensorsError.duplicateTensor(path: folder, tensor: "b", firstShard: "model-00001-of-00002.safetensors",
                                                             secondShard: "model-00002-of-00002.safetensors")) {
                try ShardedCheckpoint(folder: folder)
            }
            let indexPath = folder + "/model.safetensors.index.json"
            try Self.writeIndex(["metadata": ["total_size": 3], "weight_map": ["a": "model-00001-of-00002.safetensors",
                                                                                 "b": "model-00002-of-00002.safetensors"]], to: indexPath)
            #expect(throws: SafetensorsError.duplicateTensor(path: indexPath, tensor: "b", firstShard: "model-00002-of-00002.safetensors",
                                                             secondShard: "model-00001-of-00002.safetensors")) {
                try ShardedCheckpoint(indexPath: indexPath)
            }
            // A shard tensor the index leaves out.
            try Self.writeIndex(["weight_map": ["a": "model-00001-of-00002.safetensors"]], to: indexPath)
            try SafetensorsWriter().write([.bytes([1], name: "a", dtype: .u8, shape: [1]), .bytes([2], name: "c", dtype: .u8, shape: [1])], to: one)
            #expect(throws: SafetensorsError.unlistedTensor(path: indexPath, shard: "model-00001-of-00002.safetensors", tensor: "c")) {
                try ShardedCheckpoint(indexPath: indexPath)
            }
        }
    }

    @Test("rejects malformed index files")
    func malformedIndex() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/model.safetensors.index.json"
            for text in ["", "[]", "{}", "{\"weight_map\":[]}", "{\"weight_map\":{\"a\":1}}", "{\"weight_map\":{}}",
                         "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", "{\"weight_map\":{\"a\":\"x\"},\"metadata\":3}", "{\"weight_map\":{} x"] {
                try writeBytes(Array(text.utf8), to: path)
                let error = #expect(throws: SafetensorsError.self, "\(text)") { try ShardedCheckpoint(indexPath: path) }
                #expect(error?.kind == "invalidIndex", "\(text)")
            }
        }
    }

    @Test("openStateDict opens a file, a folder with one file, and prefers a single file over an index like transformers")
    func openStateDictChoices() throws {
        try withTemporaryFolder { folder in
            let single = folder + "/model.safetensors"
            try SafetensorsWriter().write([.bytes([9], name: "x", dtype: .u8, shape: [1])], to: single)
            #expect(try openStateDict(path: single) is SafetensorsFile)
            #expect(try openStateDict(path: folder).keys == ["x"])
            try Self.copyFixture(to: folder)
            #expect(try openStateDict(path: folder).keys == ["x"])
            try FileManager.default.removeItem(atPath: single)
            #expect(try openStateDict(path: folder) is ShardedCheckpoint)
            // Unrelated files without an index are ambiguous.
            try FileManager.default.removeItem(atPath: folder + "/" + (try Self.fixtureIndexName()))
            try SafetensorsWriter().write([.bytes([9], name: "x", dtype: .u8, shape: [1])], to: folder + "/lora.safetensors")
            let error = #expect(throws: SafetensorsError.self) { try openStateDict(path: folder) }
            #expect(error?.kind == "cannotOpen")
            #expect(throws: SafetensorsError.self) { try openStateDict(path: folder + "/nothing-here") }
        }
    }

    @Test("writes the index exactly as transformers did for the fixture")
    func indexBytesMatchTransformers() throws {
        let indexPath = Fixtures.textEncoder + "/" + (try Self.fixtureIndexName())
        let index = try ShardIndex(path: indexPath)
        #expect(index.encoded() == (try readBytes(indexPath)))
        let rebuilt = ShardIndex(totalSize: try #require(index.totalSize), weightMap: index.weightMap)
        #expect(rebuilt.encoded() == (try readBytes(indexPath)))
    }

    @Test("shards by size like transformers' shard_checkpoint, names the files, writes the index, reads back")
    func writesShards() throws {
        try withTemporaryFolder { folder in
            let source = try ShardedCheckpoint(folder: Fixtures.textEncoder)
            let tensors = try source.keys.map { OutputTensor.copy(try source.tensor($0)) }
            let sizes = try source.keys.map { try #require(source.info($0)).byteCount }
            let limit = max(sizes.max() ?? 1, source.byteCount / 3)
            let out = folder + "/out"
            let report = try SafetensorsWriter(metadata: ["format": "pt"]).writeSharded(tensors, to: out, maxShardBytes: limit)

            // The same greedy split, computed here in the given order.
            var expected: [[String]] = [[]]
            var size = 0
            for (key, bytes) in zip(source.keys, sizes) {
                if size + bytes > limit && !expected[expected.count - 1].isEmpty { expected.append([]); size = 0 }
                expected[expected.count - 1].append(key)
                size += bytes
            }
            #expect(report.shards.map { $0.tensors.map(\.name).sorted() } == expected.map { $0.sorted() })
            #expect(report.totalSize == source.byteCount)
            let n = expected.count
            let names = (1...n).map { String(format: "model-%05d-of-%05d.safetensors", $0, n) }
            #expect(report.shards.map(\.path) == names.map { out + "/" + $0 })
            #expect(report.indexPath == out + "/model.safetensors.index.json")
            #expect(try folderContents(out) == (names + ["model.safetensors.index.json"]).sorted())

            let back = try openStateDict(path: out)
            #expect(back.keys == source.keys)
            for key in source.keys { #expect(try back.tensor(key).copyBytes() == source.tensor(key).copyBytes()) }
            #expect(back.metadata["total_size"] == String(source.byteCount))
            #expect(back.metadata["format"] == "pt")
            // Each shard is what save_file writes for its tensors.
            for shard in report.shards {
                let file = try SafetensorsFile(path: shard.path)
                let single = folder + "/single.safetensors"
                try SafetensorsWriter(metadata: ["format": "pt"]).write(try file.keys.map { .copy(try file.tensor($0)) }, to: single)
                #expect(try readBytes(single) == readBytes(shard.path))
            }

            // Writing again in one shard replaces the checkpoint: old shards and index go.
            let again = try SafetensorsWriter().writeSharded(tensors, to: out, maxShardBytes: Int.max)
            #expect(again.indexPath == nil)
            #expect(try folderContents(out) == ["model.safetensors"])
            #expect(try openStateDict(path: out).keys == source.keys)
        }
    }

    @Test("a failed sharded write leaves the folder as it was")
    func failedShardedWrite() throws {
        struct Boom: Error {}
        try withTemporaryFolder { folder in
            try SafetensorsWriter().write([.bytes([1], name: "old", dtype: .u8, shape: [1])], to: folder + "/model.safetensors")
            let tensors: [OutputTensor] = [
                .bytes([1, 2], name: "a", dtype: .u8, shape: [2]),
                .bytes([3, 4], name: "b", dtype: .u8, shape: [2]),
                .computed(name: "c", dtype: .u8, shape: [2]) { _ in throw Boom() },
            ]
            #expect(throws: Boom.self) { try SafetensorsWriter().writeSharded(tensors, to: folder, maxShardBytes: 2) }
            #expect(try folderContents(folder) == ["model.safetensors"])
            #expect(try openStateDict(path: folder).keys == ["old"])
            // Names must be unique across shards too; nothing is created.
            let twice: [OutputTensor] = [.bytes([1], name: "a", dtype: .u8, shape: [1]), .bytes([2], name: "a", dtype: .u8, shape: [1])]
            #expect(throws: SafetensorsError.invalidWrite(path: folder + "/new", reason: "tensor 'a' is given twice")) {
                try SafetensorsWriter().writeSharded(twice, to: folder + "/new", maxShardBytes: 1)
            }
            // A folder the write created is removed again.
            #expect(throws: Boom.self) { try SafetensorsWriter().writeSharded(tensors, to: folder + "/new", maxShardBytes: 2) }
            #expect(try folderContents(folder) == ["model.safetensors"])
        }
    }
}
