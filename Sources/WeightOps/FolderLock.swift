#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive claim on a folder ea-weights changes (a `models/` tree, an extraction's destination), so two runs
/// at once cannot interleave their writes or their manifests: the second stops at once with a clear message.
/// The claim is an advisory `flock` on the folder itself: nothing is written into it, and the kernel releases the
/// claim when the process ends however it ends, so a killed run never leaves the folder claimed.
final class FolderLock {
    private let fd: Int32

    /// Claims `folder` (which must exist) or throws `WeightOpsError.busy`.
    init(_ folder: String) throws {
        fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw WeightOpsError.invalidInput(path: folder, reason: "cannot open the folder: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw WeightOpsError.busy(path: folder)
        }
    }

    deinit { close(fd) }
}
