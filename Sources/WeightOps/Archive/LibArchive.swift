#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation

// libarchive constants and messages shared by the readers here and the bench's compressed writer.

let archiveEOF = ARCHIVE_EOF
let archiveOK = ARCHIVE_OK

enum FileType {
    static let mask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let character: UInt32 = 0o020000
    static let block: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
    static let socket: UInt32 = 0o140000
}

func archiveMessage(_ archive: OpaquePointer?) -> String? {
    guard let archive, let message = archive_error_string(archive) else { return nil }
    let text = String(cString: message)
    return text.isEmpty ? nil : text
}
