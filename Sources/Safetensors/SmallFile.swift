#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way small files (config.json, index files, tokenizer files, yaml, the manifest) are read: whole, with a
/// size bound so a hostile "config" cannot exhaust memory, through plain `read` (Foundation's
/// `FileManager.contents(atPath:)` leaks a buffer on an empty file, which fuzzing found).
public enum SmallFile {
    /// Larger than any config a model ships.
    public static let maxBytes = 64 << 20

    /// The file's bytes; throws `SafetensorsError.cannotOpen` naming the file when it cannot be read or is too large.
    public static func read(_ path: String, maxBytes: Int = maxBytes) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.cannotOpen(path: path, reason: FileSystem.errorText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError.cannotOpen(path: path, reason: FileSystem.errorText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SafetensorsError.cannotOpen(path: path, reason: "not a regular file") }
        guard st.st_size <= maxBytes else {
            throw SafetensorsError.cannotOpen(path: path, reason: "\(st.st_size) bytes, more than the \(maxBytes >> 20) MiB a config file may have")
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw SafetensorsError.cannotOpen(path: path, reason: n < 0 ? FileSystem.errorText() : "it shrank while being read")
            }
            done += n
        }
        return bytes
    }

    /// The file's bytes, or nil when it cannot be read (for callers that report their own error).
    public static func contents(atPath path: String) -> [UInt8]? { try? read(path) }
}
