import Foundation

/// The frames of a video as RGB in [0, 1], frame-major, rows top to bottom.
public struct JudgedFrames: Sendable {
    public let count: Int
    public let height: Int
    public let width: Int
    /// [count · height · width · 3], RGB interleaved.
    public let rgb: [Double]

    /// From the pipeline's video tensor [1, 3, F, H, W] (values in [0, 1]).
    public init(video values: [Float], shape: [Int]) throws {
        guard shape.count == 5, shape[0] == 1, shape[1] == 3, values.count == shape.reduce(1, *) else {
            throw DemoGrammarError(description: "a video must be [1, 3, F, H, W], got \(shape)")
        }
        (count, height, width) = (shape[2], shape[3], shape[4])
        let plane = count * height * width
        var rgb = [Double](repeating: 0, count: plane * 3)
        for i in 0..<plane {
            for c in 0..<3 { rgb[i * 3 + c] = Double(values[c * plane + i]) }
        }
        self.rgb = rgb
    }

    /// From RGB24 frames of `height` × `width` (as a decoder returns them), divided by 255 as judge.py does.
    public init(rgb24 frames: [[UInt8]], height: Int, width: Int) throws {
        guard frames.allSatisfy({ $0.count == height * width * 3 }) else {
            throw DemoGrammarError(description: "an RGB24 frame is not \(width)x\(height)")
        }
        (count, self.height, self.width) = (frames.count, height, width)
        rgb = frames.flatMap { $0 }.map { Double($0) / 255 }
    }
}

/// Judges a generated video against its prompt from the pixels alone: the Swift port of
/// tools/train-demo/judge.py (its docstring is the specification; the numbered steps below are its steps).
public struct VideoJudge: Sendable {
    public static let colourRadius = 0.30   // max RGB distance to the prompt's colour
    public static let minArea = 12          // pixels of the object's component for a frame to count
    public static let squareFill = 0.85
    public static let triangleFill = 0.67
    public static let outlineRing = 0.75
    public static let minTravel = 6.0       // pixels over the clip along the prompt's direction

    /// judge.py's result dict, field by field.
    public struct Verdict: Sendable, CustomStringConvertible {
        public var framesCounted = 0
        /// Pixels of the prompt's colour over all frames (step 1), components or not: how much of it is drawn.
        public var objectPixels = 0
        public var background = ""
        public var colourFound = false
        public var shape: String?
        public var shapeVotes: [String: Int] = [:]
        public var style: String?
        public var ring: Double?
        /// Pixels over the clip (x, y; y points down).
        public var displacement: SIMD2<Double>?
        public var directionOK = false
        public var ok = false

        public var description: String {
            let disp = displacement.map { String(format: "[%.2f, %.2f]", $0.x, $0.y) } ?? "none"
            return "\(ok ? "right" : "wrong"): background \(background), counted \(framesCounted), shape \(shape ?? "none") "
                + "\(shapeVotes.sorted { $0.key < $1.key }), style \(style ?? "none"), ring \(ring.map { String(format: "%.3f", $0) } ?? "none"), displacement \(disp)"
        }
    }

    public let grammar: DemoGrammar

    public init(grammar: DemoGrammar) {
        self.grammar = grammar
    }

    /// `style`: the style the prompt asks for ("filled" or "outline"), nil to not judge it.
    public func judge(_ frames: JudgedFrames, prompt: String, style: String? = nil) throws -> Verdict {
        let want = try grammar.parse(prompt)
        let palette = grammar.palette
        guard let target = palette.firstIndex(where: { $0.name == "object:\(want.colour)" }) else {
            throw DemoGrammarError(description: "no palette colour object:\(want.colour)")
        }
        let (n, h, w) = (frames.count, frames.height, frames.width)
        let plane = h * w

        // 1. Object pixels: nearest palette colour is the prompt's (the first of equals), within the radius.
        let colours = palette.flatMap { [$0.rgb.x, $0.rgb.y, $0.rgb.z] }
        let rgb = frames.rgb
        var mask = [Bool](repeating: false, count: n * plane)
        for i in 0..<(n * plane) {
            let (r, g, b) = (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])
            var best = 0, bestSquared = Double.infinity
            for k in 0..<palette.count {
                let (dr, dg, db) = (r - colours[3 * k], g - colours[3 * k + 1], b - colours[3 * k + 2])
                let squared = dr * dr + dg * dg + db * db
                if squared < bestSquared { (best, bestSquared) = (k, squared) }
            }
            mask[i] = best == target && bestSquared.squareRoot() <= Self.colourRadius
        }

        // 2. Background: per-channel median of every frame's one-pixel border, nearest background colour.
        var border: [[Double]] = [[], [], []]
        for f in 0..<n {
            let rows = (0..<w).map { (0, $0) } + (0..<w).map { (h - 1, $0) } + (0..<h).map { ($0, 0) } + (0..<h).map { ($0, w - 1) }
            for (y, x) in rows {
                for c in 0..<3 { border[c].append(rgb[3 * (f * plane + y * w + x) + c]) }
            }
        }
        let median = SIMD3(Self.median(border[0]), Self.median(border[1]), Self.median(border[2]))
        let backgrounds = palette.filter { $0.name.hasPrefix("background:") }
        let distances = backgrounds.map { (($0.rgb - median) * ($0.rgb - median)).sum() }
        var verdict = Verdict()
        verdict.objectPixels = mask.filter { $0 }.count
        if let nearest = distances.indices.min(by: { distances[$0] < distances[$1] }) {  // the first of equals
            verdict.background = String(backgrounds[nearest].name.dropFirst("background:".count))
        }

        // 3.–7. per frame: the largest component, its holes filled, its shape class, ring and centroid.
        var shapes: [String] = [], rings: [Double] = [], centroids: [SIMD2<Double>] = [], counted: [Int] = []
        for f in 0..<n {
            let component = Self.largestComponent(mask[(f * plane)..<((f + 1) * plane)], height: h, width: w)
            let area = component.filter { $0 }.count
            guard area >= Self.minArea else { continue }
            let filled = Self.fillHoles(component, height: h, width: w)
            var (minX, maxX, minY, maxY, pixels) = (w, -1, h, -1, 0)
            var (sumX, sumY) = (0, 0)
            for y in 0..<h { for x in 0..<w where filled[y * w + x] {
                (minX, maxX, minY, maxY) = (min(minX, x), max(maxX, x), min(minY, y), max(maxY, y))
                (sumX, sumY) = (sumX + x, sumY + y)
                pixels += 1
            } }
            let box = Double((maxY - minY + 1) * (maxX - minX + 1))
            shapes.append(Self.classify(fill: Double(pixels) / box))
            rings.append(Double(area) / Double(pixels))
            centroids.append(SIMD2(Double(sumX), Double(sumY)) / Double(pixels))
            counted.append(f)
        }
        verdict.framesCounted = counted.count
        verdict.colourFound = Double(counted.count) >= 0.75 * Double(n)
        guard !counted.isEmpty else { return verdict }

        for shape in shapes { verdict.shapeVotes[shape, default: 0] += 1 }
        // The majority; ties go to the earlier of square, circle, triangle.
        var shape = "square"
        for candidate in ["circle", "triangle"] where verdict.shapeVotes[candidate, default: 0] > verdict.shapeVotes[shape, default: 0] {
            shape = candidate
        }
        verdict.shape = shape
        let ring = Self.median(rings)
        verdict.ring = ring
        verdict.style = ring < Self.outlineRing ? "outline" : "filled"

        // 7. Least-squares velocity against the frame index, times (F − 1).
        var velocity = SIMD2<Double>(0, 0)
        if counted.count >= 2 {
            let t = counted.map(Double.init)
            let meanT = t.reduce(0, +) / Double(t.count)
            let meanC = centroids.reduce(SIMD2(0, 0), +) / Double(centroids.count)
            var numerator = SIMD2<Double>(0, 0), denominator = 0.0
            for (ti, c) in zip(t, centroids) {
                numerator += (ti - meanT) * (c - meanC)
                denominator += (ti - meanT) * (ti - meanT)
            }
            velocity = numerator / denominator
        }
        let displacement = velocity * Double(n - 1)
        verdict.displacement = displacement
        let (dx, dy): (Double, Double) = switch want.direction {
        case "left": (-1, 0)
        case "right": (1, 0)
        case "up": (0, -1)
        default: (0, 1)
        }
        let along = displacement.x * dx + displacement.y * dy
        let across = dx != 0 ? abs(displacement.y) : abs(displacement.x)
        verdict.directionOK = along >= Self.minTravel && across <= 0.5 * along

        // 8.
        verdict.ok = verdict.colourFound && verdict.background == want.background && shape == want.shape
            && verdict.directionOK && (style == nil || verdict.style == style)
        return verdict
    }

    static func classify(fill: Double) -> String {
        if fill >= squareFill { return "square" }
        if fill < triangleFill { return "triangle" }
        return "circle"
    }

    /// numpy's median: the middle value, or the mean of the two middle values.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// The largest 4-connected component of a row-major mask; of equal ones the first in raster order.
    static func largestComponent(_ mask: ArraySlice<Bool>, height h: Int, width w: Int) -> [Bool] {
        let mask = Array(mask)
        var seen = [Bool](repeating: false, count: mask.count)
        var best: [Int] = [], component: [Int] = []
        for start in mask.indices where mask[start] && !seen[start] {
            component.removeAll(keepingCapacity: true)
            component.append(start)
            seen[start] = true
            var head = 0
            while head < component.count {
                let p = component[head]
                head += 1
                forEachNeighbour(p, height: h, width: w) { q in
                    if mask[q] && !seen[q] {
                        seen[q] = true
                        component.append(q)
                    }
                }
            }
            if component.count > best.count { best = component }
        }
        var out = [Bool](repeating: false, count: mask.count)
        for p in best { out[p] = true }
        return out
    }

    /// The component plus every pixel not reachable from the border through pixels outside it.
    static func fillHoles(_ component: [Bool], height h: Int, width w: Int) -> [Bool] {
        var outside = [Bool](repeating: false, count: component.count)
        var queue: [Int] = []
        for y in 0..<h { for x in 0..<w where (y == 0 || y == h - 1 || x == 0 || x == w - 1) && !component[y * w + x] {
            outside[y * w + x] = true
            queue.append(y * w + x)
        } }
        var head = 0
        while head < queue.count {
            let p = queue[head]
            head += 1
            forEachNeighbour(p, height: h, width: w) { q in
                if !component[q] && !outside[q] {
                    outside[q] = true
                    queue.append(q)
                }
            }
        }
        return outside.map { !$0 }
    }

    /// Up, down, left, right of pixel p, inside the frame.
    @inline(__always)
    private static func forEachNeighbour(_ p: Int, height h: Int, width w: Int, _ body: (Int) -> Void) {
        let (y, x) = (p / w, p % w)
        if y > 0 { body(p - w) }
        if y < h - 1 { body(p + w) }
        if x > 0 { body(p - 1) }
        if x < w - 1 { body(p + 1) }
    }
}
