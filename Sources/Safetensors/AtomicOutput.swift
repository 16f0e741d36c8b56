#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way ea-weights puts an output in place, files and folders alike: it is written under a hidden
/// temporary name beside its destination (registered, so an interrupt removes it), flushed to disk, and renamed
/// over the destination only when complete. Readers see the old output or the whole new one, never a part, and
/// an error leaves nothing behind.
///
/// - `AtomicOutput.File`: a file streamed through the staging buffers (direct I/O), for checkpoints.
/// - `AtomicOutput.writeFile(to:)`: a file made by a writer that wants a path (libavformat, a hashing copy).
/// - `AtomicOutput.Folder`: a folder filled in private and renamed into place in one step.
///
/// Temporary names start with `temporaryPrefix` and carry the writing process's id, so a later run (or `verify`)
/// recognises what a run killed outright left, and `removeAbandoned` removes it.
public enum AtomicOutput {
    public static let temporaryPrefix = ".ea-weights-partial-"

    /// Whether `name` (a file or folder name, not a path) is one of these temporary names.
    public static func isTemporaryName(_ name: String) -> Bool { name.hasPrefix(temporaryPrefix) }

    /// `.ea-weights-partial-<pid>-<random>-<name>` in `destination`'s folder.
    static func temporarySibling(of destination: String) -> String {
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let name = FileSystem.baseName(of: destination)
        return FileSystem.join(FileSystem.parent(of: destination), "\(temporaryPrefix)\(getpid())-\(suffix)-\(name)")
    }

    /// Calls `write` with a temporary path beside `destination` (which `write` creates), then fsyncs that file,
    /// renames it over `destination` and syncs the folder. On any error the temporary file is removed and
    /// `destination` is left as it was. The folder must exist.
    public static func writeFile<R>(to destination: String, _ write: (_ temporaryPath: String) throws -> R) throws -> R {
        try requireFolder(of: destination)
        let temporary = temporarySibling(of: destination)
        let registration = TemporaryFiles.register(temporary)
        defer {
            FileSystem.removeTree(temporary)
            TemporaryFiles.unregister(registration)
        }
        let result = try write(temporary)
        try FileSystem.sync(temporary, reportingAs: destination)
        try moveIntoPlace(temporary, to: destination)
        return result
    }

    /// Writes `bytes` to `destination` atomically.
    public static func writeFile(_ bytes: [UInt8], to destination: String) throws {
        try writeFile(to: destination) { temporary in try FileSystem.createFile(temporary, bytes, reportingAs: destination) }
    }

    /// Removes the temporary files and folders in `folder` whose writing process no longer exists (a run killed
    /// outright). Returns the names removed.
    @discardableResult
    public static func removeAbandoned(in folder: String) -> [String] {
        guard let names = try? FileSystem.list(folder) else { return [] }
        var removed: [String] = []
        for name in names where isTemporaryName(name) {
            let rest = name.dropFirst(temporaryPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid != getpid() else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH {
                FileSystem.removeTree(FileSystem.join(folder, name))
                removed.append(name)
            }
        }
        return removed
    }

    /// Deletes an output or a leftover, file or folder tree, without following links inside it.
    public static func removeTree(_ path: String) { FileSystem.removeTree(path) }

    /// Renames a finished temporary file over `destination` (replacing a file, never a folder) and makes the
    /// rename durable.
    static func moveIntoPlace(_ temporary: String, to destination: String) throws {
        if FileSystem.kind(destination) == .directory {
            throw SafetensorsError.writeFailed(path: destination, reason: "a folder of that name exists")
        }
        guard rename(temporary, destination) == 0 else {
            throw SafetensorsError.writeFailed(path: destination, reason: "rename: \(FileSystem.errorText())")
        }
        FileSystem.syncDirectory(FileSystem.parent(of: destination))
    }

    static func requireFolder(of destination: String) throws {
        let folder = FileSystem.parent(of: destination)
        guard FileSystem.kind(folder) == .directory else {
            throw SafetensorsError.writeFailed(path: destination, reason: "folder '\(folder)' does not exist")
        }
        if FileSystem.kind(destination) == .directory {
            throw SafetensorsError.writeFailed(path: destination, reason: "a folder of that name exists")
        }
    }
}

extension AtomicOutput {
    /// A file being written under a temporary name next to its destination. `commit` fsyncs and renames it into
    /// place; `discard` (or deinit without commit) removes it. Bytes go through a `StagedFileWriter`, so many small
    /// tensors cost few system calls and the disk works while the next bytes are computed.
    final class File {
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
            try AtomicOutput.requireFolder(of: destination)
            var attempt = 0
            while true {
                let candidate = AtomicOutput.temporarySibling(of: destination)
                let (descriptor, direct) = StagedFileWriter.openNew(candidate)
                if descriptor >= 0 {
                    temporaryPath = candidate
                    fd = descriptor
                    writer = StagedFileWriter(fd: descriptor, direct: direct, path: destination)
                    break
                }
                attempt += 1
                guard errno == EEXIST, attempt < 16 else {
                    throw SafetensorsError.writeFailed(
                        path: destination,
                        reason: "cannot create a file in '\(FileSystem.parent(of: destination))': \(FileSystem.errorText())")
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

        /// Writes everything, replaces the file's first bytes with `header` when given (the same length as the
        /// bytes it replaces: a header completed once the data was written), fsyncs and closes the temporary file;
        /// it stays under its temporary name until `moveIntoPlace`.
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
            try AtomicOutput.moveIntoPlace(temporaryPath, to: destination)
            finished = true
            unregister()
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
            TemporaryFiles.unregister(registration)
            registration = nil
        }
    }
}

extension AtomicOutput {
    /// A private folder (mode 0700) created beside a destination, filled, then renamed into place in one step,
    /// so readers see either nothing or the complete result. Removed, with everything in it, unless committed.
    public final class Folder {
        public let path: String
        private let parent: String
        private var registration: Int?
        private var committed = false

        /// Creates a temporary folder in `parent` for an output that will be named `name` there (the name only
        /// makes the temporary one recognisable; `commit` may choose another).
        public init(in parent: String, for name: String) throws {
            self.parent = parent
            let destination = FileSystem.join(parent, name)
            guard FileSystem.kind(parent) == .directory else {
                throw SafetensorsError.writeFailed(path: destination, reason: "folder '\(parent)' does not exist")
            }
            var attempt = 0
            while true {
                let candidate = AtomicOutput.temporarySibling(of: destination)
                if mkdir(candidate, 0o700) == 0 {
                    path = candidate
                    break
                }
                attempt += 1
                guard errno == EEXIST, attempt < 16 else {
                    throw SafetensorsError.writeFailed(
                        path: destination, reason: "cannot create a folder in '\(parent)': \(FileSystem.errorText())")
                }
            }
            registration = TemporaryFiles.register(path)
        }

        deinit {
            if !committed { FileSystem.removeTree(path) }
            TemporaryFiles.unregister(registration)
        }

        /// Flushes the folders in `folders` (relative to this folder, plus this folder itself) so their entries
        /// survive a crash, renames this folder to `destination` (which must not exist, or be an empty folder) and
        /// flushes the parent.
        public func commit(to destination: String, flushing folders: [String] = []) throws {
            for folder in folders + [""] {
                try FileSystem.syncFolder(folder.isEmpty ? path : path + "/" + folder)
            }
            if FileSystem.exists(destination) { throw SafetensorsError.destinationExists(path: destination) }
            guard rename(path, destination) == 0 else {
                if errno == EEXIST || errno == ENOTEMPTY || errno == ENOTDIR {
                    throw SafetensorsError.destinationExists(path: destination)
                }
                throw SafetensorsError.writeFailed(path: destination, reason: FileSystem.errorText())
            }
            settle()
            FileSystem.syncDirectory(parent)
        }

        /// This folder is in place (or emptied into its destination): nothing is left to remove.
        private func settle() {
            committed = true
            TemporaryFiles.unregister(registration)
            registration = nil
        }

        /// Creates the file `name` in this folder holding `bytes`.
        public func write(_ bytes: [UInt8], named name: String) throws {
            try FileSystem.createFile(FileSystem.join(path, name), bytes, reportingAs: FileSystem.join(parent, name))
        }

        /// Puts this folder's files in place as the folder `destination`: renamed whole when it does not exist;
        /// otherwise each file (flushed first) is renamed into it, and files there that `isStale` calls part of the
        /// same set but this folder did not replace (frame_0012.png of a longer earlier video) are removed.
        public func commit(into destination: String, removingStale isStale: (String) -> Bool) throws {
            let names = try FileSystem.list(path)
            for name in names { try FileSystem.sync(FileSystem.join(path, name), reportingAs: destination) }
            switch FileSystem.kind(destination) {
            case .missing:
                try commit(to: destination)
            case .directory:
                for name in names {
                    guard rename(FileSystem.join(path, name), FileSystem.join(destination, name)) == 0 else {
                        throw SafetensorsError.writeFailed(path: destination, reason: "move \(name) into it: \(FileSystem.errorText())")
                    }
                }
                let written = Set(names)
                for name in try FileSystem.list(destination) where isStale(name) && !written.contains(name) {
                    FileSystem.remove(FileSystem.join(destination, name))
                }
                FileSystem.syncDirectory(destination)
                FileSystem.removeTree(path)
                settle()
            case .file, .other:
                throw SafetensorsError.writeFailed(path: destination, reason: "a file with that name exists where the folder should go")
            }
        }
    }
}

extension AtomicOutput {
    /// Creates `folder` and its missing parents (as `os.makedirs` does for EasyAnimate's outputs).
    public static func createFolder(_ folder: String) throws {
        if FileSystem.kind(folder) == .file {
            throw SafetensorsError.writeFailed(path: folder, reason: "it is a file, not a folder")
        }
        try FileSystem.makeDirectories(folder)
    }
}
