#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation
import Safetensors

/// One extraction run: reads every entry, judges it, writes it under the staging folder, validates, commits.
final class ArchiveExtractor {
    let input: ArchiveInput
    let directory: String
    let staging: AtomicOutput.Folder
    let options: ArchiveExtractionOptions
    private var policy: ArchiveEntryPolicy
    private var folders: [String] = []
    private var files: [String: FileDigest] = [:]
    private var extractedBytes: Int64 = 0
    private var destination: String?
    private var rootPermissions: UInt32 = 0o755

    init(input: ArchiveInput, directory: String, staging: AtomicOutput.Folder, options: ArchiveExtractionOptions) {
        self.input = input
        self.directory = directory
        self.staging = staging
        self.options = options
        policy = ArchiveEntryPolicy(archive: input.path)
        if let name = options.name { destination = directory + "/" + name }
    }

    func run(removedLeftovers: [String]) throws -> ArchiveExtractionResult {
        if let destination { try requireAbsent(destination) }
        options.progress.setTotal(input.size)
        defer { options.progress.finish() }
        let reader = try TarReader(input: input, options: options)
        var entries = 0
        while let entry = try reader.nextEntry() {
            entries += 1
            if entries > options.maxEntries { throw ArchiveError.tooManyEntries(path: input.path, limit: options.maxEntries) }
            let hadTop = policy.topName != nil
            let action = try policy.admit(name: entry.name, type: entry.type)
            if !hadTop, let top = policy.topName, destination == nil {
                try ArchiveExtraction.validateFolderName(top)
                destination = directory + "/" + top
                try requireAbsent(directory + "/" + top)
            }
            try perform(action, entry: entry, reader: reader)
        }
        try reader.finish()
        guard let destination, policy.topName != nil else {
            throw ArchiveError.layout(path: input.path, reason: "it holds no entries")
        }
        guard policy.fileCount > 0 else { throw ArchiveError.layout(path: input.path, reason: "it holds no files") }

        let sorted = files.keys.sorted().map { ExtractedFile(path: $0, digest: files[$0] ?? FileDigest(size: 0, sha256: "")) }
        try ExtractedFolderValidation.validate(
            staging: staging.path, finalPath: destination, files: sorted.map(\.path), archive: input.path,
            requirePixArt: options.requirePixArtFolder)
        if options.isCancelled() { throw ArchiveError.cancelled(path: input.path) }
        // The staging folder was made private (0700); it becomes the model folder with the archive's mode.
        let mask = umask(0)
        umask(mask)
        chmod(staging.path, mode_t((rootPermissions & 0o755) | 0o700) & ~mask)
        try staging.commit(to: destination, flushing: folders)
        return ArchiveExtractionResult(
            archive: input.path, folder: destination, compression: input.compression, files: sorted,
            archiveBytes: input.size, extractedBytes: extractedBytes, removedLeftovers: removedLeftovers)
    }

    private func requireAbsent(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 { throw ArchiveError.destinationExists(path: path) }
    }

    private func stagingPath(_ relative: String) -> String { staging.path + "/" + relative }

    private func makeFolders(_ relatives: [String], permissions: UInt32?) throws {
        for (i, relative) in relatives.enumerated() {
            // Owner keeps full access (so the tree can be removed); never group/other write or special bits.
            let explicit = i == relatives.count - 1 ? permissions : nil
            let mode = mode_t(((explicit ?? 0o755) & 0o755) | 0o700)
            guard mkdir(stagingPath(relative), mode) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(relative), reason: String(cString: strerror(errno)))
            }
            folders.append(relative)
        }
    }

    private func displayPath(_ relative: String) -> String {
        (destination ?? directory + "/" + (policy.topName ?? "?")) + "/" + relative
    }

    private func perform(_ action: ArchiveEntryAction, entry: TarEntry, reader: TarReader) throws {
        switch action {
        case let .root(top):
            if top { rootPermissions = entry.permissions }
        case let .directory(_, create):
            try makeFolders(create, permissions: entry.permissions)
        case let .file(path, parents):
            try makeFolders(parents, permissions: nil)
            // Owner read/write always; never setuid/setgid/sticky or group/other write.
            let mode = mode_t((entry.permissions & 0o755) | 0o600)
            let writer = try HashingFileWriter(path: stagingPath(path), mode: mode)
            do {
                try reader.readData { try writer.write($0) }
            } catch let error as ArchiveError {
                if case let .writeFailed(_, reason) = error {
                    throw ArchiveError.writeFailed(path: displayPath(path), reason: reason)
                }
                throw error
            }
            if let size = entry.size, size != writer.size {
                throw ArchiveError.corrupt(
                    path: input.path, entry: entry.name, reason: "it declares \(size) bytes but holds \(writer.size)")
            }
            if let time = entry.modificationTime { writer.setModificationTime(seconds: time.seconds, nanoseconds: time.nanoseconds) }
            let digest = try writer.finish()
            files[path] = digest
            extractedBytes += digest.size
        case let .symlink(path, target, parents):
            try makeFolders(parents, permissions: nil)
            guard symlink(target, stagingPath(path)) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(path), reason: String(cString: strerror(errno)))
            }
        case let .hardlink(path, target, parents):
            try makeFolders(parents, permissions: nil)
            guard link(stagingPath(target), stagingPath(path)) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(path), reason: String(cString: strerror(errno)))
            }
            files[path] = files[target]
        }
    }
}
