import Foundation

/// How far two videos of one shape (float32 [1, 3, F, H, W] in [0, 1]) are apart, over all frames or one: the
/// largest absolute difference of any channel of any pixel (a NaN counts as infinite), the mean absolute
/// difference, and the PSNR with peak 1 (as `skimage.metrics.peak_signal_noise_ratio` with `data_range=1`).
public struct VideoDifference: Sendable, Equatable, Encodable {
    public let maxAbs: Double
    public let meanAbs: Double
    /// nil when the videos are identical (infinite PSNR).
    public let psnr: Double?

    /// Over every frame.
    public init(_ a: Tensor, _ b: Tensor) {
        self.init(a, b, frames: 0..<a.shape[2])
    }

    /// Frame by frame.
    public static func perFrame(_ a: Tensor, _ b: Tensor) -> [VideoDifference] {
        (0..<a.shape[2]).map { VideoDifference(a, b, frames: $0..<($0 + 1)) }
    }

    private init(_ a: Tensor, _ b: Tensor, frames: Range<Int>) {
        precondition(a.shape == b.shape && a.rank == 5 && a.shape[1] == 3, "video difference: \(a.shape) vs \(b.shape)")
        let (count, plane) = (a.shape[2], a.shape[3] * a.shape[4])
        let x = a.storage, y = b.storage
        var maxAbs: Float = 0
        var sumAbs = 0.0, sumSquares = 0.0
        for c in 0..<3 {
            for i in ((c * count + frames.lowerBound) * plane)..<((c * count + frames.upperBound) * plane) {
                let d = abs(x[i] - y[i])
                maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
                sumAbs += Double(d)
                sumSquares += Double(d) * Double(d)
            }
        }
        let values = Double(3 * plane * frames.count)
        let mse = sumSquares / values
        self.maxAbs = Double(maxAbs)
        meanAbs = sumAbs / values
        psnr = mse > 0 ? 10 * log10(1 / mse) : nil
    }

    /// "max abs 0.0123, mean abs 0.0012, PSNR 41.2 dB" (or "identical").
    public var description: String {
        guard let psnr else { return "identical" }
        return String(format: "max abs %.4g, mean abs %.3g, PSNR %.1f dB", maxAbs, meanAbs, psnr)
    }
}
