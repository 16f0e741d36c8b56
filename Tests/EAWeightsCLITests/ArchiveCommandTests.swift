import Bench
import Foundation
import Testing
import WeightOps
import TestSupport

@Suite("ea-weights extract, prepare, verify and bench extract from the command line")
struct ArchiveCommandTests {
    static let tar = Fixtures.path("tiny-pixart.tar")

    @Test("extract unpacks the fixture, prints one summary line, --json lists every file")
    func extract() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = try CLIRunner.run(["extract", Self.tar, "--to", dir])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("\(dir)/tiny-pixart"))
        #expect(plain.stderr.isEmpty, "no progress when stderr is not a terminal")
        let json = try CLIRunner.run(["extract", Self.tar, "--to", dir, "--name", "copy2", "--json"])
        #expect(json.status == 0)
        let object = CLIRunner.jsonObjectIfAny(json.stdout)
        #expect(object?["folder"] as? String == dir + "/copy2")
        let files = object?["files"] as? [[String: Any]] ?? []
        #expect(!files.isEmpty && files.allSatisfy { ($0["sha256"] as? String)?.count == 64 })
    }

    @Test("extract errors are one line on stderr naming the file, with no output and a non-zero status")
    func extractErrors() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CLIRunner.run(["extract", Self.tar, "--to", dir])
        let again = try CLIRunner.run(["extract", Self.tar, "--to", dir])
        #expect(again.status != 0)
        #expect(again.stdout.isEmpty)
        #expect(again.stderr.contains("\(dir)/tiny-pixart already exists"))
        #expect(again.stderr.split(separator: "\n").count == 1)

        var bytes = TarFormat.header(name: "m/", type: .directory)
        bytes += TarFormat.header(name: "m/../../evil", type: .file, size: 0)
        bytes += TarFormat.endOfArchive
        let hostile = dir + "/hostile.tar"
        try Data(bytes).write(to: URL(fileURLWithPath: hostile))
        let refused = try CLIRunner.run(["extract", hostile, "--to", dir + "/out"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("m/../../evil") && refused.stderr.contains(hostile))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir + "/out")) == [])
        #expect(!FileManager.default.fileExists(atPath: dir + "/../evil"))

        let lfs = dir + "/PixArt.tar"
        try "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n".write(toFile: lfs, atomically: false, encoding: .utf8)
        let pointer = try CLIRunner.run(["extract", lfs, "--to", dir + "/out"])
        #expect(pointer.status != 0 && pointer.stderr.contains("Git LFS pointer"))
    }

    @Test("Ctrl-C during extract leaves nothing behind")
    func interrupt() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A 512 MB entry whose data is a hole in the archive file: instant to make, long enough to interrupt.
        let archive = dir + "/big.tar"
        let size: Int64 = 512 << 20
        var head = TarFormat.header(name: "big/", type: .directory)
        head += TarFormat.header(name: "big/data.bin", type: .file, size: size)
        try Data(head).write(to: URL(fileURLWithPath: archive))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: archive))
        try handle.truncate(atOffset: UInt64(Int64(head.count) + size + 1024 * 10))
        try handle.close()
        let out = dir + "/models"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

        let (process, stdout, stderr) = try CLIRunner.start(["extract", archive, "--to", out, "--any-layout"])
        // Wait (bounded) for the staging folder, so the signal lands mid-extraction, then interrupt.
        for _ in 0..<5000 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            if names.contains(where: { $0.hasPrefix(".ea-weights-partial-") }) || !process.isRunning { break }
            usleep(1000)
        }
        let interrupted = process.isRunning
        kill(process.processIdentifier, SIGINT)
        let result = CLIRunner.finish(process, stdout, stderr)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        if interrupted && result.status != 0 {
            #expect(result.status == 130, "exit status 128 + SIGINT")
            #expect(result.stderr.contains("interrupted"))
            #expect(left.isEmpty, "left behind: \(left)")
        } else {
            // The machine was fast enough to finish first: then the result must be complete.
            #expect(left == ["big"])
        }
    }

    @Test("prepare builds the tree, says so when there is nothing to do, refuses a wrong kind")
    func prepare() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = dir + "/models"
        let arguments = ["prepare", "--models", models, "--pixart", Self.tar,
                         "--motion-module", Fixtures.path("motion_module.safetensors"),
                         "--lora", Fixtures.path("lora.safetensors"), "--copy"]
        let first = try CLIRunner.run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("extracted") && first.stdout.contains("Diffusion_Transformer/tiny-pixart"))
        #expect(first.stdout.contains("wrote \(models)/manifest.json"))
        let second = try CLIRunner.run(arguments)
        #expect(second.status == 0)
        #expect(second.stdout.contains("nothing to do"))

        let wrong = try CLIRunner.run(["prepare", "--models", models, "--motion-module", Fixtures.path("lora.safetensors")])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("given as --motion-module") && wrong.stderr.contains("kohya-lora"))

        let json = try CLIRunner.run(arguments + ["--json"])
        let items = CLIRunner.jsonObjectIfAny(json.stdout)?["items"] as? [[String: Any]] ?? []
        #expect(items.count == 3 && items.allSatisfy { $0["action"] as? String == "unchanged" })
    }

    @Test("verify exits 0 when all is well and 1 with a readable report of what changed")
    func verify() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = dir + "/models"
        let prepared = try CLIRunner.run(["prepare", "--models", models, "--pixart", Self.tar,
                                          "--motion-module", Fixtures.path("motion_module.safetensors"), "--copy"])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        let good = try CLIRunner.run(["verify", "--models", models])
        #expect(good.status == 0, "\(good.stdout)")
        #expect(good.stdout.hasSuffix("all well\n"))

        try "x".write(toFile: models + "/Motion_Module/stray.txt", atomically: false, encoding: .utf8)
        let bad = try CLIRunner.run(["verify", "--models", models, "--fast"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("extra") && bad.stdout.contains("Motion_Module/stray.txt"))
        let json = try CLIRunner.run(["verify", "--models", models, "--json"])
        #expect(json.status == 1)
        let object = CLIRunner.jsonObjectIfAny(json.stdout)
        #expect(object?["ok"] as? Bool == false)
        #expect((object?["problems"] as? [[String: Any]])?.first?["kind"] as? String == "extra")
    }

    @Test("bench extract times ea-weights and tar on a synthetic archive")
    func bench() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIRunner.run(["bench", "extract", "--size", "3M", "--dir", dir, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = CLIRunner.jsonObjectIfAny(result.stdout)
        #expect((object?["eaWeights"] as? [String: Any])?["megabytesPerSecond"] as? Double ?? 0 > 0)
        #expect(object?["dataBytes"] as? Int ?? 0 >= 3_000_000)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir)) == [], "the temporary archive is removed")
        let text = try CLIRunner.run(["bench", "extract", "--size", "1M", "--dir", dir + "/created"])
        #expect(text.stdout.contains("MB/s"), "a missing --dir is created: \(text.stderr)")
        let bad = try CLIRunner.run(["bench", "extract", "--size", "lots"])
        #expect(bad.status != 0 && bad.stderr.contains("--size"))
    }
}
