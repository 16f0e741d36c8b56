#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The raw file-system calls of the module (besides mmap in `MappedFile`): listing folders, and the write side
/// of an atomic save (temporary sibling file, fsync, rename). Errors come back as `SafetensorsError`s that name
/// the file a user gave, never the temporary name.
enum FileSystem {
    enum Kind { case missing, file, directory, other }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }

    /// Names of the entries of a folder (no "." or ".."), sorted by bytes.
    static func list(_ folder: String) throws -> [String] {
        guard let dir = opendir(folder) else {
            throw SafetensorsError.cannotOpen(path: folder, reason: errorText())
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.isEmpty || folder == "." ? name : (folder.hasSuffix("/") ? folder + name : folder + "/" + name)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Creates `folder` and any missing parents.
    static func makeDirectories(_ folder: String) throws {
        if kind(folder) == .directory { return }
        let parentFolder = parent(of: folder)
        if parentFolder != folder && parentFolder != "." && parentFolder != "/" { try makeDirectories(parentFolder) }
        guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
            throw SafetensorsError.writeFailed(path: folder, reason: "cannot create the folder: \(errorText())")
        }
    }

    static func remove(_ path: String) { _ = unlink(path) }

    /// Removes an empty folder (what a failed write created); does nothing if it holds anything.
    static func removeEmptyFolder(_ path: String) { _ = rmdir(path) }

    /// Whether anything (a file, folder or link, even a dangling one) has this name.
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Deletes a file or a folder tree without following links inside it; folders an archive made read-only are
    /// made writable first. Missing paths are fine.
    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { _ = unlink(path); return }
        _ = chmod(path, 0o700)
        for name in (try? list(path)) ?? [] { removeTree(join(path, name)) }
        _ = rmdir(path)
    }

    /// Creates `path` (which must not exist) holding `bytes`; errors name `destination`.
    static func createFile(_ path: String, _ bytes: [UInt8], reportingAs destination: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "create: \(errorText())") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + offset, raw.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "write: \(errorText())") }
            offset += n
        }
    }

    /// fsync of a file; errors name `destination`.
    static func sync(_ path: String, reportingAs destination: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "open: \(errorText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "fsync: \(errorText())") }
    }

    /// fsync of a folder whose entries must survive a crash (a failure is an error).
    static func syncFolder(_ folder: String) throws {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.writeFailed(path: folder, reason: errorText()) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SafetensorsError.writeFailed(path: folder, reason: "fsync: \(errorText())") }
    }

    /// fsync of a folder, so a rename inside it survives a crash (best effort: some file systems refuse it).
    static func syncDirectory(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
