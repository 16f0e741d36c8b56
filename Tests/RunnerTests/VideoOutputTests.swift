import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

/// A [1, 3, F, H, W] video in [0, 1]: smooth gradients with a square moving across them.
private func syntheticVideo(frames f: Int, height h: Int, width w: Int) -> Tensor {
    var video = [Float](repeating: 0, count: 3 * f * h * w)
    for c in 0..<3 { for t in 0..<f { for y in 0..<h { for x in 0..<w {
        var v = c == 0 ? Float(x) / Float(max(1, w - 1)) : c == 1 ? Float(y) / Float(max(1, h - 1)) : Float(t) / Float(max(1, f))
        if x >= 4 * t && x < 4 * t + 8 && y >= 4 && y < 12 { v = c == 2 ? 1 : 0.1 }
        video[(((c * f) + t) * h + y) * w + x] = v
    }}}}
    return Tensor(shape: [1, 3, f, h, w], storage: video)
}

/// A video of only `palette` distinct colours (a GIF must reproduce it exactly), busy enough to fill the LZW
/// table several times.
private func fewColourVideo(frames f: Int, height h: Int, width w: Int, colours: Int) -> Tensor {
    var video = [Float](repeating: 0, count: 3 * f * h * w)
    for t in 0..<f { for y in 0..<h { for x in 0..<w {
        let k = (x * 7 + y * 13 + t * 5 + (x * y) % 11) % colours
        let rgb = [Float(k * 37 % 256), Float(k * 91 % 256), Float(k * 53 % 256)].map { $0 / 255 }
        for c in 0..<3 { video[(((c * f) + t) * h + y) * w + x] = rgb[c] }
    }}}
    return Tensor(shape: [1, 3, f, h, w], storage: video)
}

private func meanAbsDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
    zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(max(1, a.count))
}

private func temporaryFolder() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ea-video-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The blocks of a GIF file, parsed independently of the writer.
private struct ParsedGIF {
    var width = 0, height = 0
    var loopCount: Int?
    var delays: [Int] = []
    var images = 0

    init(_ bytes: [UInt8]) throws {
        struct Malformed: Error {}
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        guard bytes.count > 13, Array(bytes[0..<6]) == Array("GIF89a".utf8) else { throw Malformed() }
        width = u16(6); height = u16(8)
        var p = 13
        if bytes[10] & 0x80 != 0 { p += 3 << ((Int(bytes[10]) & 7) + 1) }
        func skipSubBlocks() throws {
            while p < bytes.count, bytes[p] != 0 { p += Int(bytes[p]) + 1 }
            guard p < bytes.count else { throw Malformed() }
            p += 1
        }
        while p < bytes.count {
            switch bytes[p] {
            case 0x21 where bytes[p + 1] == 0xF9:
                delays.append(u16(p + 4))
                p += 2
                try skipSubBlocks()
            case 0x21 where bytes[p + 1] == 0xFF:
                if Array(bytes[(p + 3)..<(p + 14)]) == Array("NETSCAPE2.0".utf8) { loopCount = u16(p + 16) }
                p += 2
                try skipSubBlocks()
            case 0x21:
                p += 2
                try skipSubBlocks()
            case 0x2C:
                images += 1
                let packed = bytes[p + 9]
                p += 10
                if packed & 0x80 != 0 { p += 3 << ((Int(packed) & 7) + 1) }
                p += 1   // LZW minimum code size
                try skipSubBlocks()
            case 0x3B:
                return
            default:
                throw Malformed()
            }
        }
        throw Malformed()
    }
}

@Suite("Video output")
struct VideoOutputTests {
    @Test("chooses the writer from the output path")
    func formatFromPath() throws {
        #expect(try VideoOutput.format(of: "out/video.mp4") == .mp4)
        #expect(try VideoOutput.format(of: "clip.GIF") == .gif)
        #expect(try VideoOutput.format(of: "video.safetensors") == .safetensors)
        #expect(try VideoOutput.format(of: "frames") == .pngFrames)
        #expect(try VideoOutput.format(of: "out/frames/") == .pngFrames)
        #expect(throws: RunnerError.self) { try VideoOutput.format(of: "frame.png") }
        #expect(throws: RunnerError.self) { try VideoOutput.format(of: "video.avi") }
    }

    @Test("quantizes like save_videos_grid: (x * 255).astype(uint8), clamped")
    func quantization() throws {
        let values: [Float] = [0, 0.5, 1, 0.999, -0.2, 1.7, .nan, 0.00392]
        let video = try RGBVideo(video: Tensor(shape: [3, 1, 1, values.count], storage: values + values + values))
        #expect(video.frames[0].enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [0, 127, 255, 254, 0, 255, 0, 0])
    }

    @Test("MP4 decodes with libavcodec to the frame count, size, frame rate and picture written")
    func mp4RoundTrip() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 7, height: 48, width: 64)
        let path = folder + "/video.mp4"
        #expect(try VideoOutput.write(video: video, fps: 12, to: path) == .mp4)
        let decoded = try LibavVideoReader.read(path)
        #expect(decoded.codec == "h264")
        #expect(decoded.pixelFormat == "yuv420p")
        #expect(decoded.width == 64 && decoded.height == 48)
        #expect(decoded.frames.count == 7)
        #expect(decoded.frameRate == 12)
        let expected = try RGBVideo(video: video)
        for (frame, original) in zip(decoded.frames, expected.frames) {
            #expect(meanAbsDifference(frame, original) < 4)   // lossy, but the same picture
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["video.mp4"])   // no temporary left
    }

    @Test("missing output folders are created, as EasyAnimate's save_videos_grid does")
    func createsOutputFolders() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 2, height: 16, width: 16)
        for name in ["a/b/clip.gif", "c/clip.safetensors", "d/e/clip.mp4"] {
            try VideoOutput.write(video: video, fps: 12, to: folder + "/" + name)
            #expect(FileManager.default.fileExists(atPath: folder + "/" + name))
        }
    }

    @Test("MP4 of an odd-sized video is padded to even size")
    func mp4OddSize() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/odd.mp4"
        try VideoOutput.write(video: syntheticVideo(frames: 2, height: 17, width: 33), fps: 8, to: path)
        let decoded = try LibavVideoReader.read(path)
        #expect(decoded.width == 34 && decoded.height == 18)
        #expect(decoded.frames.count == 2)
        #expect(decoded.frameRate == 8)
    }

    @Test("GIF loops forever, carries the frame delays and decodes to the frames written")
    func gifRoundTrip() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 6, height: 40, width: 56)
        let path = folder + "/video.gif"
        #expect(try VideoOutput.write(video: video, fps: 12, to: path) == .gif)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let gif = try ParsedGIF(bytes)
        #expect(gif.width == 56 && gif.height == 40)
        #expect(gif.loopCount == 0)
        #expect(gif.images == 6)
        #expect(gif.delays == [8, 9, 8, 8, 9, 8])   // 12 fps: the running total stays on i/12 s
        #expect(gif.delays.reduce(0, +) == 50)
        let decoded = try LibavVideoReader.read(path)
        #expect(decoded.frames.count == 6)
        #expect(decoded.width == 56 && decoded.height == 40)
        let expected = try RGBVideo(video: video)
        for (frame, original) in zip(decoded.frames, expected.frames) {
            // 13,440 colours spread over the RGB cube cannot fit 256 well (~40 levels apart: mean error ~7);
            // a wrong channel order or frame would be off by tens of levels.
            #expect(meanAbsDifference(frame, original) < 10)
        }
    }

    @Test("GIF reproduces a video of at most 256 colours exactly, across LZW table resets")
    func gifExactColours() throws {
        let video = try RGBVideo(video: fewColourVideo(frames: 3, height: 96, width: 128, colours: 200))
        let bytes = try GIFWriter.encode(video, fps: 10)
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/exact.gif"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let decoded = try LibavVideoReader.read(path)
        #expect(decoded.frames == video.frames)
        #expect(try ParsedGIF(bytes).delays == [10, 10, 10])
    }

    @Test("GIF frame delays keep the average rate")
    func gifDelays() {
        #expect(GIFWriter.frameDelays(count: 4, fps: 25) == [4, 4, 4, 4])
        #expect(GIFWriter.frameDelays(count: 3, fps: 30) == [3, 4, 3])
        #expect(GIFWriter.frameDelays(count: 2, fps: 100) == [2, 2])   // browsers slow delays under 2 cs
    }

    @Test("PNG frames are written as a folder and decode to the exact 8-bit frames")
    func pngFrames() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 3, height: 20, width: 30)
        let out = folder + "/frames/"
        #expect(try VideoOutput.write(video: video, fps: 12, to: out) == .pngFrames)
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names == ["frame_0000.png", "frame_0001.png", "frame_0002.png"])
        let expected = try RGBVideo(video: video)
        for (i, name) in names.enumerated() {
            let decoded = try LibavVideoReader.read(out + name)
            #expect(decoded.width == 30 && decoded.height == 20)
            #expect(decoded.frames == [expected.frames[i]])
        }
        // Writing a shorter video into the same folder leaves no stale frames, and keeps unrelated files.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: out + "notes.txt"))
        try VideoOutput.write(video: syntheticVideo(frames: 2, height: 20, width: 30), fps: 12, to: out)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["frame_0000.png", "frame_0001.png", "notes.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["frames"])
    }

    @Test("safetensors output holds the float video exactly")
    func safetensorsOutput() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 2, height: 8, width: 12)
        let path = folder + "/video.safetensors"
        try VideoOutput.write(video: video, fps: 12, to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.keys == ["video"])
        let view = try file.tensor("video")
        #expect(view.dtype == .f32 && view.shape == [1, 3, 2, 8, 12])
        #expect(view.toFloat32() == video.storage)
    }

    @Test("a file where the destination folder should be, or a bad video, is an error and writes nothing")
    func failuresWriteNothing() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = syntheticVideo(frames: 2, height: 8, width: 8)
        #expect(FileManager.default.createFile(atPath: folder + "/blocked", contents: Data()))
        for name in ["blocked/video.mp4", "blocked/video.gif", "blocked/video.safetensors", "blocked/frames/"] {
            let error = #expect(throws: SafetensorsError.self) { try VideoOutput.write(video: video, fps: 12, to: folder + "/" + name) }
            #expect(error == .writeFailed(path: folder + "/blocked", reason: "it is a file, not a folder"))
        }
        try FileManager.default.removeItem(atPath: folder + "/blocked")
        #expect(throws: RunnerError.self) { try VideoOutput.write(video: Tensor(zeros: [2, 3, 1, 8, 8]), fps: 12, to: folder + "/a.gif") }
        #expect(throws: RunnerError.self) { try VideoOutput.write(video: video, fps: 0, to: folder + "/a.mp4") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }
}
