#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive claim on a folder ea-weights changes (a `models/` tree, an extraction's destination), so two runs
/// at once cannot interleave their writes or their manifests: the second stops at once, naming the first.
/// The claim is an advisory `flock` on `.ea-weights.lock` in the folder; the kernel releases it when the process
/// ends however it ends, so a killed run never leaves the folder claimed. The file itself stays (removing it would
/// race with a run opening it).
final class FolderLock {
    static let fileName = ".ea-weights.lock"

    private let fd: Int32

    /// Claims `folder` (which must exist) or throws `WeightOpsError.busy`.
    init(_ folder: String) throws {
        let path = folder + "/" + Self.fileName
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightOpsError.invalidInput(path: folder, reason: "cannot create \(Self.fileName): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var bytes = [UInt8](repeating: 0, count: 32)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            let holder = n > 0 ? Int32(String(decoding: bytes[0..<n], as: UTF8.self).split(separator: "\n").first ?? "") : nil
            close(fd)
            throw WeightOpsError.busy(path: folder, holder: holder)
        }
        // Who holds it, for the other run's message.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)
    }
}
