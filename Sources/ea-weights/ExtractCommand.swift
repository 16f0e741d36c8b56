import ArgumentParser
import Foundation
import Safetensors
import WeightOps

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Safely unpack a model archive (.tar, .tar.gz, .tar.zst, .tar.xz) into a folder.",
        discussion: """
        A model archive holds exactly one top-level folder (PixArt-XL-2-512x512.tar holds \
        PixArt-XL-2-512x512/); it is extracted to DIR/<that folder> (or DIR/NAME with --name), which must \
        not exist yet. The archive is read once as a stream, so an 11 GB tar never sits in memory, and each \
        file's SHA-256 is computed while it is written.

        Hostile or broken archives are refused with the entry or cause named: absolute names, '..', links \
        pointing out of the folder, writing through links, device nodes, FIFOs, duplicate entries, truncation \
        (even between entries), corrupt headers, bad gzip/zstd checksums, decompression bombs, or a Git LFS \
        pointer or HTML page saved under the archive's name. Files are written to a staging folder beside \
        the destination and renamed into place only after the whole archive was read, every .safetensors file \
        and index validated and the folder found to be a complete PixArt diffusers folder, so a failure or \
        Ctrl-C leaves nothing behind. Extracted files belong to you, without setuid bits or group/other write.

        Examples:
          ea-weights extract PixArt-XL-2-512x512.tar --to models/Diffusion_Transformer
          ea-weights extract fixtures/ea-tiny/tiny-pixart.tar --to /tmp/models --name PixArt-tiny --json
        """
    )

    @Argument(help: "The archive to extract.", completion: .file())
    var archive: String

    @Option(name: .customLong("to"), help: ArgumentHelp("The folder to extract into (created if missing).", valueName: "dir"))
    var directory: String

    @Option(help: "Name of the extracted folder (default: the archive's top-level folder).")
    var name: String?

    @Flag(name: .customLong("any-layout"), help: "Accept a folder that is not a PixArt diffusers folder (weights are still validated).")
    var anyLayout = false

    @Flag(help: "Print the result as one JSON object for scripts.")
    var json = false

    func run() throws {
        Interruption.install()
        var options = ArchiveExtractionOptions()
        options.name = name
        options.requirePixArtFolder = !anyLayout
        options.progress = TerminalProgress(label: "extracting \((archive as NSString).lastPathComponent)", total: nil)
        let result = try CommandFailure.exitOnInterruption { try ArchiveExtraction.extract(archive: archive, into: directory, options: options) }
        if json {
            print(try CommandOutput.json(ExtractionReport(result)))
        } else {
            for leftover in result.removedLeftovers {
                print("removed \(leftover), left in \(directory) by an interrupted run")
            }
            let layout = anyLayout ? "weights valid" : "weights valid, PixArt diffusers folder complete"
            print("extracted \(result.archive) (\(TerminalProgress.bytes(result.archiveBytes)), \(result.compression.label)) "
                + "into \(result.folder): \(result.files.count) files, \(TerminalProgress.bytes(result.extractedBytes)), \(layout)")
        }
    }
}

/// The JSON form of an extraction.
struct ExtractionReport: Encodable {
    struct File: Encodable {
        let path: String
        let size: Int64
        let sha256: String
    }

    let archive: String
    let folder: String
    let compression: String
    let archiveBytes: Int64
    let extractedBytes: Int64
    let files: [File]

    init(_ result: ArchiveExtractionResult) {
        archive = result.archive
        folder = result.folder
        compression = result.compression.rawValue
        archiveBytes = result.archiveBytes
        extractedBytes = result.extractedBytes
        files = result.files.map { File(path: $0.path, size: $0.digest.size, sha256: $0.digest.sha256) }
    }
}

extension ArchiveCompression {
    var label: String { self == .none ? "tar" : "tar + \(rawValue)" }
}
