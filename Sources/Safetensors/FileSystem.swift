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

    static func readFile(_ path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        return file.withBytes(0..<file.size) { Array($0) }
    }

    /// fsync of a folder, so a rename inside it survives a crash.
    static func syncDirectory(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// A file being written under a temporary name next to its destination. `commit` fsyncs and renames it into
/// place; `discard` (or deinit without commit) removes it. Writes go through a staging buffer so that many
/// small tensors cost few system calls.
final class AtomicFile {
    /// Where the file will end up (what messages name).
    let destination: String
    let temporaryPath: String
    private var fd: Int32
    private var staging: UnsafeMutableRawBufferPointer
    private var staged = 0
    private(set) var bytesWritten = 0
    private var registration: Int?
    private var finished = false

    static let stagingBytes = 4 << 20

    init(destination: String) throws {
        self.destination = destination
        let folder = FileSystem.parent(of: destination)
        guard FileSystem.kind(folder) == .directory else {
            throw SafetensorsError.writeFailed(path: destination, reason: "folder '\(folder)' does not exist")
        }
        if FileSystem.kind(destination) == .directory {
            throw SafetensorsError.writeFailed(path: destination, reason: "a folder of that name exists")
        }
        // A hidden sibling in the same folder, so the final rename is atomic (same file system).
        var attempt = 0
        while true {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let candidate = FileSystem.join(folder, ".\(FileSystem.baseName(of: destination)).\(getpid()).\(suffix).tmp")
            let descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                temporaryPath = candidate
                fd = descriptor
                break
            }
            attempt += 1
            guard errno == EEXIST, attempt < 16 else {
                throw SafetensorsError.writeFailed(path: destination, reason: "cannot create a file in '\(folder)': \(FileSystem.errorText())")
            }
        }
        staging = UnsafeMutableRawBufferPointer.allocate(byteCount: AtomicFile.stagingBytes, alignment: 64)
        registration = TemporaryFiles.register(temporaryPath)
    }

    deinit {
        discard()
        releaseStaging()
    }

    /// Finished files can wait (unrenamed) while other shards are written: give their buffer back.
    private func releaseStaging() {
        if staging.count > 0 { staging.deallocate() }
        staging = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    /// Fails early when the destination's file system clearly lacks room for `size` bytes (a full disk is
    /// otherwise caught by the failing write). No preallocation: glibc emulates it by writing every block.
    func checkSpace(_ size: Int) throws {
        var st = statvfs()
        guard statvfs(FileSystem.parent(of: destination), &st) == 0 else { return }
        let (free, overflow) = Int(clamping: st.f_bavail).multipliedReportingOverflow(by: Int(clamping: st.f_frsize))
        if !overflow && free < size {
            throw SafetensorsError.writeFailed(path: destination, reason: "not enough disk space: \(size) bytes needed, \(free) free")
        }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count <= staging.count - staged {
            (staging.baseAddress! + staged).copyMemory(from: base, byteCount: bytes.count)
            staged += bytes.count
            return
        }
        try flush()
        if bytes.count < staging.count {
            staging.baseAddress!.copyMemory(from: base, byteCount: bytes.count)
            staged = bytes.count
        } else {
            try writeAll(base, bytes.count)
        }
    }

    /// Lets `body` fill up to `maxBytes` of the staging buffer directly (it returns how many it filled),
    /// saving a copy for converted tensors. The space given is at least `maxBytes` (≤ `stagingBytes`).
    func withStagingSpace(maxBytes: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        precondition(maxBytes <= staging.count, "asked for more staging space than exists")
        if staging.count - staged < maxBytes { try flush() }
        let space = UnsafeMutableRawBufferPointer(start: staging.baseAddress! + staged,
                                                  count: min(maxBytes, staging.count - staged))
        let filled = try body(space)
        precondition(filled >= 0 && filled <= space.count, "filled more than the space given")
        staged += filled
    }

    func flush() throws {
        guard staged > 0 else { return }
        try writeAll(staging.baseAddress!, staged)
        staged = 0
    }

    private func writeAll(_ base: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            let n = write(fd, base + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafetensorsError.writeFailed(path: destination, reason: FileSystem.errorText())
            }
            guard n > 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "the disk accepted no more bytes") }
            done += n
        }
        bytesWritten += count
    }

    /// Flushes, fsyncs and closes the temporary file; it stays under its temporary name until `moveIntoPlace`.
    func finishWriting() throws {
        try flush()
        releaseStaging()
        guard fsync(fd) == 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "fsync: \(FileSystem.errorText())") }
        let result = close(fd)
        fd = -1
        guard result == 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "close: \(FileSystem.errorText())") }
    }

    /// Moves the finished file into place (replacing any file there) and makes the rename durable.
    func moveIntoPlace() throws {
        guard rename(temporaryPath, destination) == 0 else {
            throw SafetensorsError.writeFailed(path: destination, reason: "rename: \(FileSystem.errorText())")
        }
        finished = true
        unregister()
        FileSystem.syncDirectory(FileSystem.parent(of: destination))
    }

    func commit() throws {
        try finishWriting()
        try moveIntoPlace()
    }

    /// Removes the temporary file (idempotent; nothing happens after a commit).
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished {
            FileSystem.remove(temporaryPath)
            finished = true
        }
        unregister()
    }

    private func unregister() {
        if let slot = registration { TemporaryFiles.unregister(slot) }
        registration = nil
    }
}
