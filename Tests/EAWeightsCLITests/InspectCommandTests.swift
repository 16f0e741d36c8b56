import Foundation
import Testing
import TestSupport

@Suite("inspect command")
struct InspectCommandTests {
    private func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("--json on the fixture root reports every checkpoint with its kind")
    func fixtureRootJSON() throws {
        let result = try CLIRunner.run(["inspect", "fixtures/ea-tiny", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let files = try #require(try json(result.stdout)["files"] as? [[String: Any]])
        var kinds: [String: String] = [:]
        for file in files {
            let path = try #require(file["path"] as? String)
            kinds[(path as NSString).lastPathComponent] = file["kind"] as? String
            for key in ["tensors", "parameters", "dtypes", "metadata"] { #expect(file[key] != nil, "\(path) \(key)") }
        }
        #expect(kinds["motion_module.safetensors"] == "motion-module")
        #expect(kinds["personalized.safetensors"] == "pixart-transformer-2d")
        #expect(kinds["lora.safetensors"] == "kohya-lora")
        #expect(kinds["merged_lora_transformer3d.safetensors"] == "easyanimate-transformer-3d")
        #expect(kinds["personalized_transformer3d.safetensors"] == "easyanimate-transformer-3d")
        #expect(kinds["model.safetensors.index.json"] == "t5-encoder")
        #expect(kinds["pipeline.safetensors"] == "unknown")
        let components = Set(files.compactMap { $0["component"] as? String })
        #expect(components == ["transformer", "vae", "text_encoder"])
        let pipelines = try #require(try json(result.stdout)["pipelines"] as? [[String: Any]])
        #expect(pipelines.count == 1)
    }

    @Test("human output names the kind and aligns its labels")
    func humanOutput() throws {
        let result = try CLIRunner.run(["inspect", "fixtures/ea-tiny/tiny-pixart/transformer"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasSuffix("diffusion_pytorch_model.safetensors") == true)
        #expect(lines.contains { $0.hasPrefix("  kind") && $0.hasSuffix("pixart-transformer-2d") })
        // Every labelled row starts its value in the same column.
        let labelled = lines.dropFirst().filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
        let columns = Set(labelled.compactMap { line -> Int? in
            guard let range = line.range(of: "  ", range: line.index(line.startIndex, offsetBy: 2)..<line.endIndex) else { return nil }
            let afterGap = line[range.upperBound...].prefix { $0 == " " }.count
            return line.distance(from: line.startIndex, to: range.upperBound) + afterGap
        })
        #expect(columns.count == 1, "\(result.stdout)")
    }

    @Test("--tensors --filter lists only matching tensors with dtype, shape and bytes")
    func filter() throws {
        let result = try CLIRunner.run(["inspect", "fixtures/ea-tiny/lora.safetensors", "--filter", "^lora_te_.*_q\\.", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try #require((try json(result.stdout)["files"] as? [[String: Any]])?.first)
        let rows = try #require(file["tensorList"] as? [[String: Any]])
        #expect(!rows.isEmpty)
        for row in rows {
            let name = try #require(row["name"] as? String)
            #expect(name.hasPrefix("lora_te_") && name.contains("_q."))
            #expect(row["dtype"] is String && row["shape"] is [Int] && row["bytes"] is Int)
        }
    }

    @Test("--hash prints the SHA-256")
    func hash() throws {
        let result = try CLIRunner.run(["inspect", "fixtures/ea-tiny/lora.safetensors", "--hash", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try #require((try json(result.stdout)["files"] as? [[String: Any]])?.first)
        let hash = try #require(file["sha256"] as? String)
        #expect(hash.count == 64 && hash.allSatisfy(\.isHexDigit))
    }

    @Test("bad input exits non-zero with one line naming the file, and prints no report")
    func badInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ea-weights-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let corrupt = dir.appendingPathComponent("corrupt.safetensors").path
        try Data([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x7b]).write(to: URL(fileURLWithPath: corrupt))
        let missing = dir.appendingPathComponent("nope.safetensors").path
        for path in [corrupt, missing] {
            let result = try CLIRunner.run(["inspect", "fixtures/ea-tiny/lora.safetensors", path])
            #expect(result.status != 0)
            #expect(result.stdout.isEmpty)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains(path))
        }
    }

    @Test("inspect reads only headers: a 4 GiB checkpoint whose data is a hole stays out of the page cache")
    func sparseFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ea-weights-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.safetensors").path
        // 48 T5 blocks of (16384, 2048) F32 projections: a 6 GiB text encoder in shape.
        var entries: [String] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) {
            let bytes = shape.reduce(4, *)
            entries.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        add("shared.weight", [32128, 2048])
        for b in 0..<48 { add("encoder.block.\(b).layer.0.SelfAttention.q.weight", [16384, 2048]) }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        let prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        try Data(prefix + header).write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(prefix.count + header.count + offset))
        try handle.close()
        #expect(offset > 4 << 30)

        let result = try CLIRunner.run(["inspect", path, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try #require((try json(result.stdout)["files"] as? [[String: Any]])?.first)
        #expect(file["kind"] as? String == "t5-encoder")
        #expect((file["t5"] as? [String: Any])?["layers"] as? Int == 48)
        #expect(file["bytes"] as? Int == offset)

        let resident = try PageCache.residentBytes(path: path, from: prefix.count + header.count)
        #expect(resident <= 4 << 20, "\(resident) bytes of tensor data were read")
    }
}

@Suite("inspect on other commands' outputs")
struct InspectConvertedTests {
    @Test("a checkpoint quantized by convert keeps its kind and shows its format")
    func quantized() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ea-weights-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("int8.safetensors").path
        let convert = try CLIRunner.run(["convert", "fixtures/ea-tiny/personalized.safetensors", "--to", "int8", "--group-size", "16", "--out", out])
        #expect(convert.status == 0, "\(convert.stderr)")
        let result = try CLIRunner.run(["inspect", out, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let file = try #require((object?["files"] as? [[String: Any]])?.first)
        #expect(file["kind"] as? String == "pixart-transformer-2d")
        let quantization = try #require(file["quantization"] as? [String: Any])
        let formats = try #require(quantization["formats"] as? [String: [String: Any]])
        #expect(formats["int8_blockwise"]?["groupSizes"] as? [Int] == [16])
    }
}
