import Foundation
import Runner

/// Two runs' exact frames (float32 [1, 3, F, H, W] in [0, 1]) compared frame by frame (`VideoDifference`), and a
/// heat map of where they differ.
struct FrameComparison: Encodable, Sendable {
    struct Frame: Encodable, Sendable, Equatable {
        let index: Int
        let maxAbs: Double
        let meanAbs: Double
        /// nil when the frames are identical (infinite PSNR).
        let psnr: Double?
    }

    let a: String
    let b: String
    let frames: [Frame]
    let width: Int
    let height: Int
    /// The largest `maxAbs` of all frames: the heat maps' white (0 when the runs are identical).
    let scale: Double

    /// The frame count and size of a video tensor.
    static func dimensions(_ video: Tensor) -> (frames: Int, height: Int, width: Int) {
        (video.shape[2], video.shape[3], video.shape[4])
    }

    init(a: String, b: String, videoA: Tensor, videoB: Tensor) {
        let (_, height, width) = Self.dimensions(videoA)
        frames = VideoDifference.perFrame(videoA, videoB).enumerated().map { f, d in
            Frame(index: f, maxAbs: d.maxAbs, meanAbs: d.meanAbs, psnr: d.psnr)
        }
        self.a = a
        self.b = b
        self.width = width
        self.height = height
        self.scale = frames.map(\.maxAbs).max() ?? 0
    }

    /// Frame `frame`'s difference as RGB: per pixel the largest channel difference over `scale`, from black
    /// through red and yellow to white (all black when `scale` is 0).
    static func heatMap(_ videoA: Tensor, _ videoB: Tensor, frame: Int, scale: Double) -> [UInt8] {
        let (count, height, width) = dimensions(videoA)
        let plane = height * width
        let x = videoA.storage, y = videoB.storage
        var rgb = [UInt8](repeating: 0, count: plane * 3)
        guard scale > 0 else { return rgb }
        for i in 0..<plane {
            var d: Float = 0
            for c in 0..<3 {
                let index = (c * count + frame) * plane + i
                d = max(d, abs(x[index] - y[index]))
            }
            let t = min(1, Double(d) / scale) * 3
            rgb[3 * i] = channel(t)
            rgb[3 * i + 1] = channel(t - 1)
            rgb[3 * i + 2] = channel(t - 2)
        }
        return rgb
    }

    private static func channel(_ t: Double) -> UInt8 { UInt8((min(1, max(0, t)) * 255).rounded()) }
}
