import Foundation
import Safetensors

/// Saves the pipeline's video in the format `--out` names:
///
/// | path | output |
/// |---|---|
/// | `x.mp4` | H.264 (yuv420p) MP4 at `fps` (`MP4Writer`) |
/// | `x.gif` | looping animated GIF at `fps` (`GIFWriter`) |
/// | `frames/` or `frames` (no extension) | a folder of `frame_0000.png`, ... (`PNGWriter`) |
/// | `x.safetensors` | the float32 tensor `video` [1, 3, F, H, W] in [0, 1], for exact comparisons |
///
/// Images are quantized to 8 bits as EasyAnimate's `save_videos_grid` does. Every output is written under a
/// temporary name and moved into place when complete.
public enum VideoOutput {
    public enum Format: String, Sendable, CaseIterable {
        case mp4
        case gif
        case pngFrames = "png"
        case safetensors
    }

    /// The format for `path`, from its extension (case-insensitive).
    public static func format(of path: String) throws -> Format {
        if path.hasSuffix("/") { return .pngFrames }
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        switch ext {
        case "": return .pngFrames
        case "mp4": return .mp4
        case "gif": return .gif
        case "safetensors": return .safetensors
        case "png":
            throw RunnerError.outputFailed(path: path, reason: "PNG output is a folder of frames: give a folder path "
                + "without extension or ending in '/' (e.g. --out frames/)")
        default:
            throw RunnerError.outputFailed(path: path, reason: "unknown video format '.\(ext)' (use .mp4, .gif, "
                + ".safetensors, or a folder path for PNG frames)")
        }
    }

    /// Writes `video` ([1, 3, F, H, W], values in [0, 1]) to `path` at `fps` frames per second and returns the
    /// format used. A PNG folder is created if missing.
    @discardableResult
    public static func write(video: Tensor, fps: Int, to path: String) throws -> Format {
        let format = try format(of: path)
        guard video.rank == 5, video.shape[0] == 1, video.shape[1] == 3, video.shape.allSatisfy({ $0 > 0 }) else {
            throw RunnerError.invalidInput("a video to save must have shape [1, 3, F, H, W], not \(video.shape)")
        }
        guard fps > 0 else { throw RunnerError.outputFailed(path: path, reason: "the frame rate must be positive, not \(fps)") }
        // The output's folder is created when missing, as EasyAnimate's `save_videos_grid` does (`os.makedirs`).
        try AtomicOutput.createFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        switch format {
        case .safetensors:
            // SafetensorsWriter's own errors name the file and the problem.
            try SafetensorsWriter().write([.floats(video.storage, name: "video", dtype: .f32, shape: video.shape)], to: path)
        case .mp4:
            try MP4Writer.write(try RGBVideo(video: video), fps: fps, to: path)
        case .gif:
            try GIFWriter.write(try RGBVideo(video: video), fps: fps, to: path)
        case .pngFrames:
            let folder = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
            try PNGWriter.write(try RGBVideo(video: video), toFolder: folder)
        }
        return format
    }
}
