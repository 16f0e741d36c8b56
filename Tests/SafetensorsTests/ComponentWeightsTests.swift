import Foundation
import Testing
import Safetensors

@Suite("ComponentWeights: which weights a model folder loads")
struct ComponentWeightsTests {
    /// A one-tensor file whose tensor name says which file it is.
    static func write(_ name: String, tensor: String, in folder: String) throws {
        try SafetensorsWriter().write([.bytes([1, 2], name: tensor, dtype: .u8, shape: [2])], to: folder + "/" + name)
    }

    /// An index over one-tensor shards named after their tensors.
    static func writeSharded(_ base: String, tensors: [String], in folder: String, indexName: String? = nil) throws {
        var map: [String: String] = [:]
        for (i, tensor) in tensors.enumerated() {
            let shard = String(format: "%@-%05d-of-%05d.safetensors", base, i + 1, tensors.count)
            try write(shard, tensor: tensor, in: folder)
            map[tensor] = shard
        }
        try writeBytes(ShardIndex(totalSize: 2 * tensors.count, weightMap: map).encoded(),
                       to: folder + "/" + (indexName ?? base + ".safetensors.index.json"))
    }

    @Test("a single standard file is read, with nothing ignored")
    func singleOnly() throws {
        try withTemporaryFolder { folder in
            try Self.write("diffusion_pytorch_model.safetensors", tensor: "single", in: folder)
            let weights = try ComponentWeights(folder: folder)
            #expect(weights.layout == .file("diffusion_pytorch_model.safetensors"))
            #expect(weights.library == .diffusers)
            #expect(weights.files == ["diffusion_pytorch_model.safetensors"])
            #expect(weights.ignored.isEmpty && weights.shadowed.isEmpty && weights.note == nil)
            let dict = try weights.open()
            #expect(dict is SafetensorsFile && dict.keys == ["single"])
        }
    }

    @Test("an index alone is read with its shards")
    func indexOnly() throws {
        try withTemporaryFolder { folder in
            try Self.writeSharded("model", tensors: ["a", "b"], in: folder)
            let weights = try ComponentWeights(folder: folder)
            guard case let .index(name, index) = weights.layout else { Issue.record("\(weights.layout)"); return }
            #expect(name == "model.safetensors.index.json")
            #expect(index.shardFiles == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
            #expect(weights.library == .transformers)
            #expect(weights.files == index.shardFiles)
            #expect(weights.ignored.isEmpty)
            let dict = try weights.open()
            #expect(dict is ShardedCheckpoint && dict.keys == ["a", "b"])
            #expect(dict.info("a")?.shape == [2])
        }
    }

    @Test("the single file wins over an index of the same name; the index and its shards are shadowed")
    func singleBeforeIndex() throws {
        for base in ["diffusion_pytorch_model", "model"] {
            try withTemporaryFolder { folder in
                try Self.write("\(base).safetensors", tensor: "single", in: folder)
                try Self.writeSharded(base, tensors: ["a", "b"], in: folder)
                try writeBytes(Array("{}".utf8), to: folder + "/config.json")
                let weights = try ComponentWeights(folder: folder)
                #expect(weights.layout == .file("\(base).safetensors"))
                let shadowed = ["\(base).safetensors.index.json", "\(base)-00001-of-00002.safetensors", "\(base)-00002-of-00002.safetensors"]
                #expect(weights.shadowed == shadowed)
                #expect(Set(weights.ignored) == Set(shadowed))
                #expect(try weights.open().keys == ["single"])
                #expect(try openStateDict(path: folder).keys == ["single"])
                #expect(try ShardedCheckpoint(folder: folder).keys == ["single"])
                let note = try #require(weights.note)
                #expect(note.contains("loaders read \(base).safetensors") && note.contains("\(base).safetensors.index.json"))
            }
        }
    }

    @Test("variants are read only when asked for, and then only the variant's names")
    func variants() throws {
        try withTemporaryFolder { folder in
            try Self.write("diffusion_pytorch_model.safetensors", tensor: "plain", in: folder)
            try Self.write("diffusion_pytorch_model.fp16.safetensors", tensor: "fp16", in: folder)
            let plain = try ComponentWeights(folder: folder)
            #expect(try plain.open().keys == ["plain"])
            #expect(plain.ignored == ["diffusion_pytorch_model.fp16.safetensors"] && plain.shadowed.isEmpty)
            #expect(plain.note?.contains("read only when that variant is asked for") == true)
            let fp16 = try ComponentWeights(folder: folder, variant: "fp16")
            #expect(fp16.layout == .file("diffusion_pytorch_model.fp16.safetensors"))
            #expect(try fp16.open().keys == ["fp16"])
            #expect(fp16.ignored == ["diffusion_pytorch_model.safetensors"])
            let error = #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder, variant: "ema") }
            #expect(error?.description.contains("diffusion_pytorch_model.ema.safetensors") == true)

            // A variant alone is not read without asking; the error says it is there.
            try FileManager.default.removeItem(atPath: folder + "/diffusion_pytorch_model.safetensors")
            let alone = #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder) }
            #expect(alone?.description.contains("diffusion_pytorch_model.fp16.safetensors, a variant read only when asked for") == true)

            // A sharded variant: `_add_variant(SAFE_WEIGHTS_INDEX_NAME, "fp16")`.
            try FileManager.default.removeItem(atPath: folder + "/diffusion_pytorch_model.fp16.safetensors")
            try Self.writeSharded("diffusion_pytorch_model", tensors: ["x", "y"], in: folder,
                                  indexName: "diffusion_pytorch_model.safetensors.index.fp16.json")
            let sharded = try ComponentWeights(folder: folder, variant: "fp16")
            #expect(sharded.entry == "diffusion_pytorch_model.safetensors.index.fp16.json")
            #expect(try sharded.open().keys == ["x", "y"])
        }
    }

    @Test("a folder with no weights is a one-line error naming the folder and the names looked for")
    func noWeights() throws {
        try withTemporaryFolder { folder in
            try writeBytes(Array("{}".utf8), to: folder + "/config.json")
            try writeBytes([0x80, 0x02], to: folder + "/diffusion_pytorch_model.bin")
            let error = try #require(#expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder) })
            let text = error.description
            #expect(error.kind == "cannotOpen")
            #expect(text.hasPrefix(folder + ": "))
            #expect(!text.contains("\n"))
            for name in ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                         "model.safetensors", "model.safetensors.index.json"] {
                #expect(text.contains(name), "\(name)")
            }
            #expect(text.contains("diffusion_pytorch_model.bin is a PyTorch pickle"))
            let restricted = #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder, library: .transformers) }
            #expect(restricted?.description.contains("diffusion_pytorch_model.safetensors") == false)
            #expect(throws: SafetensorsError.cannotOpen(path: folder + "/none", reason: "no such folder")) {
                try ComponentWeights(folder: folder + "/none")
            }
        }
    }

    @Test("an index naming a missing shard is an error naming the index and the shard")
    func indexWithMissingShard() throws {
        try withTemporaryFolder { folder in
            try Self.writeSharded("diffusion_pytorch_model", tensors: ["a", "b"], in: folder)
            try FileManager.default.removeItem(atPath: folder + "/diffusion_pytorch_model-00002-of-00002.safetensors")
            #expect(throws: SafetensorsError.missingShard(path: folder + "/diffusion_pytorch_model.safetensors.index.json",
                                                          shard: "diffusion_pytorch_model-00002-of-00002.safetensors")) {
                try ComponentWeights(folder: folder)
            }
        }
    }

    @Test("a library restricts the names; without one, both libraries' names together are ambiguous")
    func libraries() throws {
        try withTemporaryFolder { folder in
            try Self.write("diffusion_pytorch_model.safetensors", tensor: "diffusers", in: folder)
            try Self.write("model.safetensors", tensor: "transformers", in: folder)
            #expect(try ComponentWeights(folder: folder, library: .diffusers).open().keys == ["diffusers"])
            #expect(try ComponentWeights(folder: folder, library: .transformers).open().keys == ["transformers"])
            let error = #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder) }
            #expect(error?.description.contains("both diffusion_pytorch_model.safetensors and model.safetensors") == true)
        }
    }

    @Test("a folder without standard names: its one file, its one index, or complete index-less shards")
    func otherNames() throws {
        try withTemporaryFolder { folder in
            try Self.write("portrait.safetensors", tensor: "p", in: folder)
            #expect(try ComponentWeights(folder: folder).layout == .file("portrait.safetensors"))
            #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder, library: .diffusers) }
            try Self.writeSharded("portrait", tensors: ["a"], in: folder)
            let both = try ComponentWeights(folder: folder)
            #expect(both.layout == .file("portrait.safetensors") && both.shadowed.first == "portrait.safetensors.index.json")
            try FileManager.default.removeItem(atPath: folder + "/portrait.safetensors")
            #expect(try ComponentWeights(folder: folder).entry == "portrait.safetensors.index.json")
            try FileManager.default.removeItem(atPath: folder + "/portrait.safetensors.index.json")
            try FileManager.default.removeItem(atPath: folder + "/portrait-00001-of-00001.safetensors")
            try Self.write("portrait-00001-of-00002.safetensors", tensor: "a", in: folder)
            try Self.write("portrait-00002-of-00002.safetensors", tensor: "b", in: folder)
            let shards = try ComponentWeights(folder: folder)
            #expect(shards.layout == .shards(["portrait-00001-of-00002.safetensors", "portrait-00002-of-00002.safetensors"]))
            #expect(shards.path == folder)
            #expect(try shards.open().keys == ["a", "b"])
            try Self.write("lora.safetensors", tensor: "l", in: folder)
            let error = #expect(throws: SafetensorsError.self) { try ComponentWeights(folder: folder) }
            #expect(error?.description.contains("3 .safetensors files and no index") == true)
        }
    }
}
