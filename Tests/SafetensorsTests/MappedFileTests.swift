import Foundation
import Testing
import Safetensors

@Suite("mapped file")
struct MappedFileTests {
    @Test("read copies the bytes the mapping shows", arguments: [4097, 3 << 20])
    func readEqualsMapping(size: Int) throws {
        try withTemporaryFolder { folder in
            let path = folder + "/data.bin"
            try writeBytes((0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }, to: path)
            let file = try MappedFile(path: path)
            for range in [0..<size, 3..<(size - 5), (size / 2)..<(size / 2 + 1), 7..<7] {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 64)
                defer { buffer.deallocate() }
                try file.read(range, into: buffer)
                let mapped = file.withBytes(range) { Array($0) }
                #expect(Array(buffer) == mapped, "\(range)")
            }
        }
    }

    @Test("read of a file truncated after it was opened fails naming the file")
    func readOfTruncatedFileFails() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/data.bin"
            try writeBytes([UInt8](repeating: 7, count: 1 << 16), to: path)
            let file = try MappedFile(path: path)
            #expect(truncate(path, 100) == 0)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 64)
            defer { buffer.deallocate() }
            let error = #expect(throws: SafetensorsError.self) { try file.read(0..<(1 << 16), into: buffer) }
            #expect(error.map { "\($0)".hasPrefix(path + ": read failed: the file ended at byte 100") } == true, "\(String(describing: error))")
        }
    }
}
