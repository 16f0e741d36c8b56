#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A private folder created beside a destination, filled, then renamed into place in one step, so readers see
/// either nothing or the complete result. Removed (with everything in it) if it is never committed.
/// Its name carries the creating process id so a later run can recognise and remove the leftovers of a run
/// that was killed outright.
public final class StagingFolder {
    public static let prefix = ".ea-weights-staging-"

    public let path: String
    private let parent: String
    private var committed = false

    /// Creates `parent/.ea-weights-staging-<pid>-XXXXXX` (mode 0700).
    public init(in parent: String) throws {
        self.parent = parent
        var template = Array("\(parent)/\(Self.prefix)\(getpid())-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { $0.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else {
            throw SafetensorsError.writeFailed(path: parent, reason: "cannot create a staging folder: \(String(cString: strerror(errno)))")
        }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        if !committed { Self.removeTree(path) }
    }

    /// Flushes the folders in `folders` (relative to the staging folder, plus the staging folder itself) so their
    /// entries survive a crash, renames the staging folder to `destination` (which must not exist, or be an empty
    /// folder) and flushes the parent.
    public func commit(to destination: String, flushing folders: [String]) throws {
        for folder in folders + [""] {
            try Self.flushFolder(folder.isEmpty ? path : path + "/" + folder)
        }
        var st = stat()
        if lstat(destination, &st) == 0 { throw SafetensorsError.destinationExists(path: destination) }
        guard rename(path, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST || errno == ENOTEMPTY || errno == ENOTDIR {
                throw SafetensorsError.destinationExists(path: destination)
            }
            throw SafetensorsError.writeFailed(path: destination, reason: reason)
        }
        committed = true
        try? Self.flushFolder(parent)
    }

    /// Removes staging folders in `parent` whose creating process no longer exists (a run killed outright).
    /// Returns the names removed.
    @discardableResult
    public static func removeAbandoned(in parent: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]) else { continue }
            if pid == getpid() { continue }
            if kill(pid, 0) == -1 && errno == ESRCH {
                removeTree(parent + "/" + name)
                removed.append(name)
            }
        }
        return removed
    }

    public static func flushFolder(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SafetensorsError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    /// Deletes a folder tree without following links inside it.
    public static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        // Folders whose write permission an archive removed must become writable before emptying them.
        if (st.st_mode & S_IFMT) == S_IFDIR {
            _ = chmod(path, 0o700)
            if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for name in names { removeTree(path + "/" + name) }
            }
            _ = rmdir(path)
        } else {
            _ = unlink(path)
        }
    }
}
