/// A video as 8-bit RGB frames: what every image and video writer takes.
public struct RGBVideo: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// One buffer per frame: `height` rows of `width` RGB triples.
    public let frames: [[UInt8]]

    public var frameCount: Int { frames.count }

    public init(width: Int, height: Int, frames: [[UInt8]]) throws {
        guard width > 0, height > 0, !frames.isEmpty else {
            throw RunnerError.invalidInput("a video needs at least one frame of positive size (got \(frames.count) of \(width)x\(height))")
        }
        let (size, overflow) = width.multipliedReportingOverflow(by: height * 3)
        guard !overflow, frames.allSatisfy({ $0.count == size }) else {
            throw RunnerError.invalidInput("every frame of a \(width)x\(height) RGB video must hold \(width)x\(height)x3 bytes")
        }
        self.width = width
        self.height = height
        self.frames = frames
    }

    /// The pipeline's float video [1, 3, F, H, W] (or [3, F, H, W]) with values in [0, 1], quantized as EasyAnimate's
    /// `save_videos_grid` does: `(x * 255).numpy().astype(np.uint8)`, which truncates. Values outside [0, 1] and NaN
    /// are clamped first.
    public init(video: Tensor) throws {
        let shape = video.shape
        guard (shape.count == 5 && shape[0] == 1 && shape[1] == 3) || (shape.count == 4 && shape[0] == 3) else {
            throw RunnerError.invalidInput("a video to save must have shape [1, 3, F, H, W] with values in [0, 1], not \(shape)")
        }
        let (f, h, w) = (shape[shape.count - 3], shape[shape.count - 2], shape[shape.count - 1])
        let plane = h * w
        var frames: [[UInt8]] = []
        frames.reserveCapacity(f)
        video.withUnsafeBufferPointer { src in
            for fi in 0..<f {
                let r = src.baseAddress! + fi * plane
                let g = r + f * plane, b = g + f * plane
                frames.append([UInt8](unsafeUninitializedCapacity: plane * 3) { rgb, count in
                    for i in 0..<plane {
                        rgb[3 * i] = RGBVideo.quantize(r[i])
                        rgb[3 * i + 1] = RGBVideo.quantize(g[i])
                        rgb[3 * i + 2] = RGBVideo.quantize(b[i])
                    }
                    count = plane * 3
                })
            }
        }
        try self.init(width: w, height: h, frames: frames)
    }

    @inline(__always)
    static func quantize(_ v: Float) -> UInt8 {
        // `v >= 0` is false for NaN, which therefore becomes 0.
        UInt8(v >= 0 ? (v <= 1 ? v * 255 : 255) : 0)
    }
}
