/// One colour table for a whole video, so colours do not flicker between frames: median cut over the video's
/// colour histogram, each cut placed where it minimises the squared error, and the pixels mapped to their
/// nearest palette colour through a 4×4 ordered (Bayer) dither sized to the palette's own error, which stays
/// still from frame to frame (error diffusion would shimmer). A video of at most `maxColors` distinct colours
/// gets exactly its own colours, undithered.
struct GIFPalette {
    /// RGB triples, at most 256 of them.
    let colors: [UInt8]
    /// Dither strength in 8-bit levels (peak to peak); 0 when the palette is exact.
    let ditherAmplitude: Float
    /// Palette index for each 18-bit colour (6 bits per channel), filled on first use; -1 = not yet known.
    private var nearest: [Int16]
    /// Set when the palette holds every colour of the video: each maps to itself.
    private let exactIndex: [UInt32: UInt8]?

    var count: Int { colors.count / 3 }

    init(video: RGBVideo, maxColors: Int = 256) {
        nearest = [Int16](repeating: -1, count: 1 << 18)
        let histogram = Histogram(video: video)
        if histogram.isExact && histogram.counts.count <= maxColors {
            let exact = histogram.counts.indices.map { histogram.color(of: $0) }
            colors = exact.flatMap { [UInt8($0 >> 16), UInt8(($0 >> 8) & 0xFF), UInt8($0 & 0xFF)] }
            exactIndex = Dictionary(uniqueKeysWithValues: exact.enumerated().map { ($0.element, UInt8($0.offset)) })
            ditherAmplitude = 0
            return
        }
        exactIndex = nil
        let boxes = GIFPalette.medianCut(histogram, maxColors: maxColors)
        var colors: [UInt8] = []
        var squaredError = 0.0, pixels = 0.0
        for box in boxes {
            let n = Double(box.count)
            colors += [box.sum.0, box.sum.1, box.sum.2].map { UInt8(min(255, max(0, ($0 / n).rounded()))) }
            squaredError += box.squaredError
            pixels += n
        }
        self.colors = colors
        // Twice the RMS error per channel: enough to break up banding, little visible texture.
        let rms = pixels > 0 ? (max(0, squaredError) / pixels / 3).squareRoot() : 0
        ditherAmplitude = Float(min(24, 2 * rms))
    }

    /// Palette indices of one RGB frame.
    mutating func indices(of rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        // Bayer thresholds, centred on zero.
        let bayer: [Float] = [0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5].map { ($0 + 0.5) / 16 - 0.5 }
        var out = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let p = (y * width + x) * 3
                let offset = ditherAmplitude * bayer[(y & 3) * 4 + (x & 3)]
                var r = Int(rgb[p]), g = Int(rgb[p + 1]), b = Int(rgb[p + 2])
                if ditherAmplitude > 0 {
                    r = min(255, max(0, Int((Float(r) + offset).rounded())))
                    g = min(255, max(0, Int((Float(g) + offset).rounded())))
                    b = min(255, max(0, Int((Float(b) + offset).rounded())))
                }
                out[y * width + x] = index(r: r, g: g, b: b)
            }
        }
        return out
    }

    private mutating func index(r: Int, g: Int, b: Int) -> UInt8 {
        if let exactIndex, let i = exactIndex[UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b)] { return i }
        let cell = (r >> 2) << 12 | (g >> 2) << 6 | (b >> 2)
        if nearest[cell] >= 0 { return UInt8(nearest[cell]) }
        // The nearest colour to the cell's centre stands for the whole cell (at most 2 levels away per channel).
        let (cr, cg, cb) = ((r >> 2) << 2 | 2, (g >> 2) << 2 | 2, (b >> 2) << 2 | 2)
        var best = 0, bestDistance = Int.max
        for i in 0..<count {
            let dr = Int(colors[3 * i]) - cr, dg = Int(colors[3 * i + 1]) - cg, db = Int(colors[3 * i + 2]) - cb
            let d = dr * dr + dg * dg + db * db
            if d < bestDistance { bestDistance = d; best = i }
        }
        nearest[cell] = Int16(best)
        return UInt8(best)
    }

    // MARK: Median cut

    /// Pixel counts and colour sums per colour: every distinct colour while there are at most `exactLimit`,
    /// else per 18-bit cell (6 bits per channel). Only non-empty entries are kept.
    struct Histogram {
        var counts: [Int] = []
        var sums: [(Double, Double, Double)] = []
        var isExact = true

        init(video: RGBVideo, exactLimit: Int = 1 << 16) {
            var slots: [UInt32: Int] = [:]
            scan: for frame in video.frames {
                var i = 0
                while i + 2 < frame.count {
                    let color = UInt32(frame[i]) << 16 | UInt32(frame[i + 1]) << 8 | UInt32(frame[i + 2])
                    if let slot = slots[color] {
                        counts[slot] += 1
                    } else {
                        guard slots.count < exactLimit else { isExact = false; break scan }
                        slots[color] = counts.count
                        counts.append(1)
                    }
                    i += 3
                }
            }
            if isExact {
                sums = [(Double, Double, Double)](repeating: (0, 0, 0), count: counts.count)
                for (color, slot) in slots {
                    let n = Double(counts[slot])
                    sums[slot] = (Double(color >> 16) * n, Double((color >> 8) & 0xFF) * n, Double(color & 0xFF) * n)
                }
                // Dictionary order varies between runs; keep the palette deterministic.
                let order = counts.indices.sorted { color(of: $0) < color(of: $1) }
                counts = order.map { counts[$0] }
                sums = order.map { sums[$0] }
                return
            }
            var cellCounts = [Int](repeating: 0, count: 1 << 18)
            var cellSums = [(Double, Double, Double)](repeating: (0, 0, 0), count: 1 << 18)
            for frame in video.frames {
                var i = 0
                while i + 2 < frame.count {
                    let (r, g, b) = (frame[i], frame[i + 1], frame[i + 2])
                    let cell = Int(r >> 2) << 12 | Int(g >> 2) << 6 | Int(b >> 2)
                    cellCounts[cell] += 1
                    cellSums[cell].0 += Double(r); cellSums[cell].1 += Double(g); cellSums[cell].2 += Double(b)
                    i += 3
                }
            }
            let used = cellCounts.indices.filter { cellCounts[$0] > 0 }
            counts = used.map { cellCounts[$0] }
            sums = used.map { cellSums[$0] }
        }

        /// The entry's mean colour as 0xRRGGBB (its exact colour for an exact histogram).
        func color(of entry: Int) -> UInt32 {
            let n = Double(counts[entry]), s = sums[entry]
            let channel = { (v: Double) in UInt32(min(255, max(0, (v / n).rounded()))) }
            return channel(s.0) << 16 | channel(s.1) << 8 | channel(s.2)
        }
    }

    /// A set of histogram bins and its statistics (bins stand for their mean colour).
    struct Box {
        var bins: [Int]
        var count = 0
        var sum: (Double, Double, Double) = (0, 0, 0)
        /// Σ count·|mean|² over the bins.
        var squares = 0.0

        init(bins: [Int], histogram: Histogram) {
            self.bins = bins
            for bin in bins {
                let n = Double(histogram.counts[bin]), s = histogram.sums[bin]
                count += histogram.counts[bin]
                sum.0 += s.0; sum.1 += s.1; sum.2 += s.2
                squares += (s.0 * s.0 + s.1 * s.1 + s.2 * s.2) / n
            }
        }

        var squaredError: Double {
            count == 0 ? 0 : squares - (sum.0 * sum.0 + sum.1 * sum.1 + sum.2 * sum.2) / Double(count)
        }
    }

    static func medianCut(_ histogram: Histogram, maxColors: Int) -> [Box] {
        guard !histogram.counts.isEmpty else { return [] }
        var boxes = [Box(bins: Array(histogram.counts.indices), histogram: histogram)]
        while boxes.count < maxColors {
            // Split the box holding the most error.
            guard let target = boxes.indices.filter({ boxes[$0].bins.count > 1 })
                .max(by: { boxes[$0].squaredError < boxes[$1].squaredError }) else { break }
            let (left, right) = split(boxes[target], histogram: histogram)
            boxes[target] = left
            boxes.append(right)
        }
        return boxes
    }

    /// Sorts the box along its widest-spread channel and cuts where the two halves' squared errors sum lowest.
    private static func split(_ box: Box, histogram: Histogram) -> (Box, Box) {
        func mean(_ bin: Int, _ channel: Int) -> Double {
            let s = histogram.sums[bin], n = Double(histogram.counts[bin])
            return (channel == 0 ? s.0 : channel == 1 ? s.1 : s.2) / n
        }
        let n = Double(box.count)
        var variances = [0.0, 0.0, 0.0]
        for channel in 0..<3 {
            let m = (channel == 0 ? box.sum.0 : channel == 1 ? box.sum.1 : box.sum.2) / n
            for bin in box.bins {
                let d = mean(bin, channel) - m
                variances[channel] += Double(histogram.counts[bin]) * d * d
            }
        }
        let axis = variances.indices.max(by: { variances[$0] < variances[$1] }) ?? 0
        let sorted = box.bins.sorted { mean($0, axis) < mean($1, axis) }
        // Prefix sums give each cut's error in O(1).
        var count = 0.0, sum = (0.0, 0.0, 0.0), squares = 0.0
        var bestCut = 1, bestError = Double.infinity
        for cut in 1..<sorted.count {
            let bin = sorted[cut - 1]
            let c = Double(histogram.counts[bin]), s = histogram.sums[bin]
            count += c
            sum.0 += s.0; sum.1 += s.1; sum.2 += s.2
            squares += (s.0 * s.0 + s.1 * s.1 + s.2 * s.2) / c
            let rest = (box.sum.0 - sum.0, box.sum.1 - sum.1, box.sum.2 - sum.2)
            let leftError = squares - (sum.0 * sum.0 + sum.1 * sum.1 + sum.2 * sum.2) / count
            let rightError = (box.squares - squares) - (rest.0 * rest.0 + rest.1 * rest.1 + rest.2 * rest.2) / (n - count)
            if leftError + rightError < bestError {
                bestError = leftError + rightError
                bestCut = cut
            }
        }
        return (Box(bins: Array(sorted[..<bestCut]), histogram: histogram),
                Box(bins: Array(sorted[bestCut...]), histogram: histogram))
    }
}
