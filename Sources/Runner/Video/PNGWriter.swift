import CZlib
import Foundation
import Safetensors
import EANumerics

/// Writes video frames as a folder of 8-bit RGB PNG files (`frame_0000.png`, ...), compressed with zlib.
public enum PNGWriter {
    /// File name of frame `index` (0-based), zero-padded so names sort in frame order.
    static func frameName(_ index: Int, of count: Int) -> String {
        let digits = max(4, String(max(0, count - 1)).count)
        let number = String(index)
        return "frame_" + String(repeating: "0", count: max(0, digits - number.count)) + number + ".png"
    }

    /// True for names this writer produces, so that frames left from an earlier, longer video are removed.
    static func isFrameName(_ name: String) -> Bool {
        guard name.hasPrefix("frame_"), name.hasSuffix(".png") else { return false }
        let digits = name.dropFirst("frame_".count).dropLast(".png".count)
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
    }

    static func write(_ video: RGBVideo, toFolder path: String) throws {
        // Frames are compressed in parallel, then written one by one.
        var encoded = [[UInt8]](repeating: [], count: video.frameCount)
        var failure: RunnerError?
        let lock = NSLock()
        encoded.withUnsafeMutableBufferPointer { slots in
            let slots = slots
            parallelFor(video.frameCount) { i in
                do {
                    slots[i] = try encode(video.frames[i], width: video.width, height: video.height)
                } catch {
                    lock.lock(); failure = error as? RunnerError ?? .outputFailed(path: path, reason: "\(error)"); lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        let url = URL(fileURLWithPath: path)
        let folder = try AtomicOutput.Folder(in: url.deletingLastPathComponent().path, for: url.lastPathComponent)
        for (i, bytes) in encoded.enumerated() {
            try folder.write(bytes, named: frameName(i, of: video.frameCount))
        }
        try folder.commit(into: path, removingStale: isFrameName)
    }

    /// One PNG file: signature, IHDR (8-bit RGB), one IDAT with the zlib stream of filtered rows, IEND.
    public static func encode(_ rgb: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]   // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", try compress(filteredRows(rgb, width: width, height: height)), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// Each row prefixed by the filter (None, Sub, Up, Average, Paeth) with the smallest sum of absolute
    /// differences, the heuristic the PNG specification recommends.
    static func filteredRows(_ rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        let stride = width * 3
        var out = [UInt8](repeating: 0, count: height * (stride + 1))
        var candidate = [UInt8](repeating: 0, count: stride)
        let zeros = [UInt8](repeating: 0, count: stride)
        rgb.withUnsafeBufferPointer { src in
            for y in 0..<height {
                let row = src.baseAddress! + y * stride
                let above = y > 0 ? src.baseAddress! + (y - 1) * stride : nil
                var bestCost = Int.max
                for filter in UInt8(0)...4 {
                    var cost = 0
                    zeros.withUnsafeBufferPointer { zero in
                        let up = above ?? zero.baseAddress!
                        for i in 0..<stride {
                            let a = i >= 3 ? Int(row[i - 3]) : 0, b = Int(up[i]), c = i >= 3 ? Int(up[i - 3]) : 0
                            let predictor: Int
                            switch filter {
                            case 0: predictor = 0
                            case 1: predictor = a
                            case 2: predictor = b
                            case 3: predictor = (a + b) / 2
                            default:
                                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                                predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                            }
                            let value = UInt8(truncatingIfNeeded: Int(row[i]) - predictor)
                            candidate[i] = value
                            cost += value < 128 ? Int(value) : 256 - Int(value)
                        }
                    }
                    if cost < bestCost {
                        bestCost = cost
                        let start = y * (stride + 1)
                        out[start] = filter
                        out.replaceSubrange((start + 1)..<(start + 1 + stride), with: candidate)
                    }
                }
            }
        }
        return out
    }

    private static func compress(_ data: [UInt8]) throws -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress!, &capacity, src.baseAddress!, uLong(src.count), 6)
            }
        }
        guard status == Z_OK else {
            throw RunnerError.outputFailed(path: "PNG frame", reason: "zlib compression failed (status \(status))")
        }
        out.removeLast(out.count - Int(capacity))
        return out
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png.appendBigEndian(UInt32(data.count))
        var crc = typeBytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        crc = data.withUnsafeBufferPointer { data.isEmpty ? crc : crc32(crc, $0.baseAddress, uInt($0.count)) }
        png += typeBytes
        png += data
        png.appendBigEndian(UInt32(crc))
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }
}
