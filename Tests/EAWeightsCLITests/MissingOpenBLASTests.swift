import Foundation
import Testing
import TestSupport

/// Without OpenBLAS the commands that compute stop before any work with one line naming the library and the
/// Debian package, never falling back to a slow loop. `EA_WEIGHTS_OPENBLAS` points the loader at a library
/// that does not exist, as on a machine without libopenblas0.
@Suite("missing OpenBLAS")
struct MissingOpenBLASTests {
    static let absent = ["EA_WEIGHTS_OPENBLAS": "/nonexistent/libopenblas.so.0"]

    @Test("generate and merge-lora fail with one line naming the library and the package, and write nothing",
          arguments: ["generate", "merge-lora"])
    func failsWithOneLine(command: String) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out.safetensors").path
        let fixture = Fixtures.eaTiny.path
        let arguments = command == "generate"
            ? ["generate", "--prompt", "a forest", "--frames", "2", "--steps", "1", "--out", out]
            : ["merge-lora", fixture + "/tiny-pixart/transformer/diffusion_pytorch_model.safetensors",
               "--lora", fixture + "/lora.safetensors", "--out", out]
        let result = try CLIRunner.run(arguments, environment: Self.absent)
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(result.stderr)")
        #expect(result.stderr.contains("/nonexistent/libopenblas.so.0"))
        #expect(result.stderr.contains("apt-get install libopenblas0"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }
}
