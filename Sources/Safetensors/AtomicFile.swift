#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written under a temporary name next to its destination. `commit` fsyncs and renames it into
/// place; `discard` (or deinit without commit) removes it. Bytes go through a `StagedFileWriter`, so many small
/// tensors cost few system calls and the disk works while the next bytes are computed.
final class AtomicFile {
    /// Where the file will end up (what messages name).
    let destination: String
    let temporaryPath: String
    private var fd: Int32
    private var writer: StagedFileWriter?
    private var registration: Int?
    private var finished = false
    private var finishedSize = 0

    /// The most `withStagingSpace` may reserve at once.
    static let stagingBytes = StagedFileWriter.maxReservation

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
            let (descriptor, direct) = StagedFileWriter.openNew(candidate)
            if descriptor >= 0 {
                temporaryPath = candidate
                fd = descriptor
                writer = StagedFileWriter(fd: descriptor, direct: direct, path: destination)
                break
            }
            attempt += 1
            guard errno == EEXIST, attempt < 16 else {
                throw SafetensorsError.writeFailed(path: destination, reason: "cannot create a file in '\(folder)': \(FileSystem.errorText())")
            }
        }
        registration = TemporaryFiles.register(temporaryPath)
    }

    deinit {
        discard()
    }

    /// Bytes appended so far.
    var bytesWritten: Int { writer?.bytesAppended ?? finishedSize }

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
        try openWriter().append(bytes)
    }

    /// Lets `body` fill up to `maxBytes` (≤ `stagingBytes`) of the staging buffer directly (it returns how many
    /// it filled), saving a copy for converted tensors.
    func withStagingSpace(maxBytes: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        try openWriter().withSpace(maxBytes: maxBytes, body)
    }

    /// Writes everything, replaces the file's first bytes with `header` when given (the same length as the bytes
    /// it replaces: a header completed once the data was written), fsyncs and closes the temporary file; it stays
    /// under its temporary name until `moveIntoPlace`.
    func finishWriting(header: [UInt8]? = nil) throws {
        let writer = try openWriter()
        try writer.finish()
        if let header { try header.withUnsafeBytes { try writer.overwrite($0, at: 0) } }
        finishedSize = writer.bytesAppended
        // Finished files can wait (unrenamed) while other shards are written: give the buffers back.
        self.writer = nil
        guard fsync(fd) == 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "fsync: \(FileSystem.errorText())") }
        let result = close(fd)
        fd = -1
        guard result == 0 else { throw SafetensorsError.writeFailed(path: destination, reason: "close: \(FileSystem.errorText())") }
    }

    private func openWriter() throws -> StagedFileWriter {
        guard let writer else { throw SafetensorsError.writeFailed(path: destination, reason: "the file is already finished") }
        return writer
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
        // The writer's background write must end before the descriptor closes.
        writer = nil
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
