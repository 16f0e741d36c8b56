import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Output files and folders are written under a hidden temporary sibling and moved into place only when complete,
/// so an error leaves no partial output and a file being replaced stays intact until then.
enum AtomicOutput {
    /// Calls `write` with a temporary path in `path`'s folder, then fsyncs that file and renames it to `path`.
    static func writeFile(to path: String, _ write: (_ temporaryPath: String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        try ensureFolder(folder, for: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
        do {
            try write(temporary)
            try sync(temporary, for: path)
            guard rename(temporary, path) == 0 else { throw failure(path, "rename from \(temporary)") }
            syncFolder(folder)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Writes `bytes` to `path` atomically.
    static func writeFile(_ bytes: [UInt8], to path: String) throws {
        try writeFile(to: path) { temporary in try writeBytes(bytes, to: temporary, for: path) }
    }

    /// Writes files into the folder `path` (created if missing): `write` fills a temporary sibling folder, then
    /// each file is renamed into `path`. Older files of the same set that this write did not replace
    /// (`isStale`, e.g. frame_0012.png from a longer earlier video) are removed afterwards.
    static func writeFolder(to path: String, isStale: (String) -> Bool,
                            _ write: (_ temporaryFolder: String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent().path
        try ensureFolder(parent, for: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw RunnerError.outputFailed(path: path, reason: "a file with that name exists where the frames folder should go")
        }
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw RunnerError.outputFailed(path: path, reason: "cannot create \(temporary) (\(error.localizedDescription))")
        }
        try write(temporary)
        let written = try contents(of: temporary, for: path)
        for name in written { try sync(temporary + "/" + name, for: path) }
        if !FileManager.default.fileExists(atPath: path) {
            guard rename(temporary, path) == 0 else { throw failure(path, "rename from \(temporary)") }
        } else {
            for name in written {
                guard rename(temporary + "/" + name, path + "/" + name) == 0 else { throw failure(path, "move \(name) into it") }
            }
            let keep = Set(written)
            for name in try contents(of: path, for: path) where isStale(name) && !keep.contains(name) {
                unlink(path + "/" + name)
            }
        }
        syncFolder(path)
        syncFolder(parent)
    }

    /// Creates `path` with `bytes` (used inside the temporary areas above).
    static func writeBytes(_ bytes: [UInt8], to path: String, for output: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(output, "create \(path)") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw failure(output, "write \(path)") }
            offset += n
        }
    }

    /// Creates the output's folder when missing, as EasyAnimate's `save_videos_grid` does (`os.makedirs`).
    static func ensureFolder(_ folder: String, for path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw RunnerError.outputFailed(path: path, reason: "\(folder) is a file, not a folder")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw RunnerError.outputFailed(path: path, reason: "cannot create the folder \(folder) (\(error.localizedDescription))")
        }
    }

    private static func contents(of folder: String, for path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw RunnerError.outputFailed(path: path, reason: "cannot list \(folder) (\(error.localizedDescription))")
        }
    }

    private static func sync(_ file: String, for path: String) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path, "open \(file)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure(path, "fsync \(file)") }
    }

    /// Makes a rename durable; best effort, as some file systems refuse fsync on folders.
    private static func syncFolder(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    private static func failure(_ path: String, _ action: String) -> RunnerError {
        RunnerError.outputFailed(path: path, reason: "could not \(action): \(String(cString: strerror(errno)))")
    }
}
