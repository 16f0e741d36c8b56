import Foundation
import FuzzTargets
import Testing
import TestSupport

/// Every input under `fixtures/fuzz/<target>/` (seeds, and what fuzzing found) goes through its target again:
/// none may crash, hang or leak.
@Suite("fuzz targets replay their corpus")
struct FuzzRegressionTests {
    static let corpus = Fixtures.packageRoot.appendingPathComponent("fixtures/fuzz")

    @Test("each target replays its regression inputs", arguments: FuzzTargets.names)
    func replaysCorpus(target: String) throws {
        let folder = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(!files.isEmpty, "fixtures/fuzz/\(target) holds no inputs")
        for file in files {
            let data = Array(try Data(contentsOf: folder.appendingPathComponent(file)))
            #expect(FuzzTargets.run(target, data))
        }
    }

    @Test("an unknown target is refused")
    func unknownTarget() {
        #expect(!FuzzTargets.run("no-such-target", []))
    }
}
