#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A read-only memory mapping of a whole file: the only place that calls mmap/munmap.
/// The mapping lives as long as this object; views borrow it only inside closures.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?
    /// Kept open for `read` (pread), closed with the mapping.
    private let descriptor: Int32
    /// How far ahead of a streaming read the kernel is asked for data, and how far it has been asked so far.
    private static let readAheadWindow = 64 << 20
    private let readAheadEnd = Mutex(0)

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafetensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SafetensorsError.cannotOpen(path: path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw SafetensorsError.cannotOpen(path: path, reason: "not a regular file")
        }
        size = Int(st.st_size)
        descriptor = fd
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SafetensorsError.cannotOpen(path: path, reason: "mmap failed: \(reason)")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        close(descriptor)
    }

    /// Copies the bytes `range` into `buffer` with pread: the page cache is copied and no page tables are
    /// touched. For passes that read each tensor once or twice this is about twice as fast as faulting the mapping
    /// in and unmapping it (measured on 2.4 GB in the page cache: 0.14 s against 0.31 s on one core).
    public func read(_ range: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(range.lowerBound >= 0 && range.upperBound <= size && buffer.count >= range.count, "read outside the file")
        guard !range.isEmpty, let destination = buffer.baseAddress else { return }
        var done = 0
        while done < range.count {
            let n = pread(descriptor, destination + done, range.count - done, off_t(range.lowerBound + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = n == 0 ? "the file ended at byte \(range.lowerBound + done) (truncated while open?)"
                                    : String(cString: strerror(errno))
                throw SafetensorsError.readFailed(path: path, reason: reason)
            }
            done += n
        }
    }

    /// Calls `body` with the bytes `range` of the file (clamped by the caller's validation).
    public func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "range outside mapping")
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// Tells the kernel a range will be read sequentially (streaming copies), is about to be read (read-ahead,
    /// started at once), or is no longer needed (unmapped from this process; the page cache keeps it).
    public func adviseSequential(_ range: Range<Int>) { advise(range, MADV_SEQUENTIAL) }
    public func adviseWillNeed(_ range: Range<Int>) { advise(range, MADV_WILLNEED) }
    public func adviseDontNeed(_ range: Range<Int>) { advise(range, MADV_DONTNEED) }

    /// Called by streaming reads with where they are: asks the kernel at once for the data up to a window
    /// ahead, so many reads are in flight (a cold file read 1.5 GB/s that way here, against 0.66 GB/s through
    /// page faults and the kernel's own read-ahead). Each byte is asked for once while reads move forward.
    public func readAhead(from offset: Int) {
        let end = min(size, offset + Self.readAheadWindow)
        let start: Int? = readAheadEnd.withLock { advised in
            // Behind the window's start or far ahead of it: a jump; the window starts again here.
            if advised < offset || advised > end { advised = offset }
            guard end - advised >= Self.readAheadWindow / 4 || (end == size && advised < end) else { return nil }
            defer { advised = end }
            return advised
        }
        if let start { advise(start..<end, MADV_WILLNEED) }
    }

    /// Reads `range` front to back in blocks of at most `blockSize` bytes, asking the kernel ahead of the reads
    /// (`readAhead`) and unmapping each block once `body` is done with it, so a multi-GB pass neither waits on
    /// page faults nor grows the resident memory.
    public func forEachBlock(in range: Range<Int>, blockSize: Int,
                             _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        precondition(blockSize > 0, "block size must be positive")
        var offset = range.lowerBound
        while offset < range.upperBound {
            readAhead(from: offset)
            let block = offset..<min(range.upperBound, offset + blockSize)
            try withBytes(block, body)
            adviseDontNeed(block)
            offset = block.upperBound
        }
    }

    private func advise(_ range: Range<Int>, _ advice: Int32) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, advice)
    }
}
