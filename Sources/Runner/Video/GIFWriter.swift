import Safetensors

/// Writes a looping animated GIF (GIF89a): one global colour table for the whole video (`GIFPalette`), the
/// NETSCAPE2.0 extension to loop forever, and per frame a graphic control extension carrying its delay and
/// the LZW-compressed palette indices.
enum GIFWriter {
    static func write(_ video: RGBVideo, fps: Int, to path: String) throws {
        try AtomicOutput.writeFile(try encode(video, fps: fps, path: path), to: path)
    }

    static func encode(_ video: RGBVideo, fps: Int, path: String = "GIF") throws -> [UInt8] {
        guard video.width <= 0xFFFF, video.height <= 0xFFFF else {
            throw RunnerError.outputFailed(path: path, reason: "GIF frames are at most 65535 pixels wide and high, not \(video.width)x\(video.height)")
        }
        guard fps > 0 else { throw RunnerError.outputFailed(path: path, reason: "the frame rate must be positive, not \(fps)") }
        var palette = GIFPalette(video: video)
        // The colour table size is a power of two, at least 2 entries.
        var tableBits = 1
        while (1 << tableBits) < palette.count { tableBits += 1 }
        var gif = Array("GIF89a".utf8)
        gif.appendLittleEndian(UInt16(video.width))
        gif.appendLittleEndian(UInt16(video.height))
        // Global colour table present, 8-bit colour resolution, table size 2^(tableBits).
        gif += [0x80 | 0x70 | UInt8(tableBits - 1), 0, 0]
        gif += palette.colors
        gif += [UInt8](repeating: 0, count: ((1 << tableBits) - palette.count) * 3)
        // NETSCAPE2.0 application extension: loop count 0 = forever.
        gif += [0x21, 0xFF, 0x0B] + Array("NETSCAPE2.0".utf8) + [0x03, 0x01, 0x00, 0x00, 0x00]
        let delays = frameDelays(count: video.frameCount, fps: fps)
        let minimumCodeSize = max(2, tableBits)
        for (i, frame) in video.frames.enumerated() {
            // Graphic control extension: disposal 1 (leave the frame in place), no transparency, delay in 1/100 s.
            gif += [0x21, 0xF9, 0x04, 0x04]
            gif.appendLittleEndian(delays[i])
            gif += [0x00, 0x00]
            // Image descriptor: the whole canvas, no local colour table, not interlaced.
            gif += [0x2C, 0, 0, 0, 0]
            gif.appendLittleEndian(UInt16(video.width))
            gif.appendLittleEndian(UInt16(video.height))
            gif.append(0)
            gif.append(UInt8(minimumCodeSize))
            let data = LZW.encode(palette.indices(of: frame, width: video.width, height: video.height),
                                  minimumCodeSize: minimumCodeSize)
            // Data sub-blocks of at most 255 bytes, then a zero-length terminator.
            var offset = 0
            while offset < data.count {
                let n = min(255, data.count - offset)
                gif.append(UInt8(n))
                gif += data[offset..<(offset + n)]
                offset += n
            }
            gif.append(0)
        }
        gif.append(0x3B)
        return gif
    }

    /// Delays in hundredths of a second whose running total tracks i/fps (12 fps: 8, 9, 8, 8, 9, 8, ...), so the
    /// average rate is exact even though one frame cannot last 8.33 cs. Browsers play delays under 2 cs slowly,
    /// so faster rates are capped at 50 fps.
    static func frameDelays(count: Int, fps: Int) -> [UInt16] {
        func time(_ i: Int) -> Int { (i * 200 / fps + 1) / 2 }   // round(100·i / fps)
        return (0..<count).map { i in UInt16(clamping: max(2, time(i + 1) - time(i))) }
    }

    /// GIF's variable-width LZW (codes of minimumCodeSize+1 up to 12 bits, least significant bit first),
    /// with a clear code at the start and whenever the 4096-entry table fills.
    enum LZW {
        static func encode(_ indices: [UInt8], minimumCodeSize: Int) -> [UInt8] {
            let clear = 1 << minimumCodeSize, end = clear + 1
            var writer = BitWriter()
            var codeSize = minimumCodeSize + 1
            var nextCode = end + 1
            // table[prefix << 8 | byte] = generation << 12 | code; entries of older generations count as empty,
            // so a clear costs nothing.
            var table = [UInt32](repeating: 0, count: 4096 << 8)
            var generation: UInt32 = 1
            writer.write(clear, bits: codeSize)
            guard var prefix = indices.first.map(Int.init) else {
                writer.write(end, bits: codeSize)
                return writer.finish()
            }
            for byte in indices.dropFirst() {
                let slot = prefix << 8 | Int(byte)
                let entry = table[slot]
                if entry >> 12 == generation {
                    prefix = Int(entry & 0xFFF)
                    continue
                }
                writer.write(prefix, bits: codeSize)
                if nextCode == 4096 {
                    writer.write(clear, bits: codeSize)
                    generation += 1
                    codeSize = minimumCodeSize + 1
                    nextCode = end + 1
                } else {
                    // The decoder widens its codes once its table reaches 2^codeSize entries.
                    if nextCode >= 1 << codeSize { codeSize += 1 }
                    table[slot] = generation << 12 | UInt32(nextCode)
                    nextCode += 1
                }
                prefix = Int(byte)
            }
            writer.write(prefix, bits: codeSize)
            writer.write(end, bits: codeSize)
            return writer.finish()
        }

        struct BitWriter {
            var bytes: [UInt8] = []
            var buffer: UInt64 = 0
            var count = 0

            mutating func write(_ code: Int, bits: Int) {
                buffer |= UInt64(code) << UInt64(count)
                count += bits
                while count >= 8 {
                    bytes.append(UInt8(buffer & 0xFF))
                    buffer >>= 8
                    count -= 8
                }
            }

            mutating func finish() -> [UInt8] {
                if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
                return bytes
            }
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian(_ value: UInt16) {
        append(UInt8(value & 0xFF))
        append(UInt8(value >> 8))
    }
}
