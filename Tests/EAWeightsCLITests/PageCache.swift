import Foundation
#if canImport(Glibc)
import Glibc
import TestSupport
#endif

/// A page-cache probe: pages of a file that nobody read (for a sparse file's hole) are not in the page
/// cache, so a reader that only parses headers leaves the data section out of it.
enum PageCache {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Bytes of the file from `offset` on that sit in the page cache (mincore on a fresh mapping).
    static func residentBytes(path: String, from offset: Int) throws -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "\(path): cannot open") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(description: "\(path): cannot stat") }
        let size = Int(st.st_size)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw Failure(description: "\(path): cannot map")
        }
        defer { munmap(base, size) }
        let start = offset / page * page
        let length = size - start
        var vector = [UInt8](repeating: 0, count: (length + page - 1) / page)
        guard mincore(base + start, length, &vector) == 0 else { throw Failure(description: "\(path): mincore failed") }
        return vector.reduce(0) { $0 + Int($1 & 1) } * page
    }
}
