import Foundation

/// T5's learned relative position bias: each (query, key) distance falls in a bucket (exact for short distances,
/// logarithmic up to `max_distance`), each bucket has one bias per head. Only the first layer owns the table;
/// every layer adds the same bias. Reproduces transformers' `T5Attention._relative_position_bucket` and
/// `compute_bias`, including its float32 arithmetic for the logarithmic buckets.
public struct T5RelativePositionBias: Sendable {
    public let weight: Parameter   // (num_buckets, num_heads)
    public let numBuckets: Int
    public let maxDistance: Int
    public let heads: Int
    public let bidirectional: Bool

    public init(_ w: WeightScope, numBuckets: Int, maxDistance: Int, heads: Int, bidirectional: Bool = true) throws {
        weight = try w.parameter("weight", shape: [numBuckets, heads])
        self.numBuckets = numBuckets
        self.maxDistance = maxDistance
        self.heads = heads
        self.bidirectional = bidirectional
    }

    /// The bucket of `keyPosition - queryPosition`.
    public static func bucket(relativePosition: Int, bidirectional: Bool, numBuckets: Int, maxDistance: Int) -> Int {
        var bucket = 0
        var buckets = numBuckets
        var distance = relativePosition
        if bidirectional {
            buckets /= 2
            if distance > 0 { bucket += buckets }
            distance = abs(distance)
        } else {
            distance = -min(distance, 0)
        }
        let maxExact = buckets / 2
        if distance < maxExact { return bucket + distance }
        // torch: max_exact + (log(rp.float() / max_exact) / math.log(max_distance / max_exact) * (n - max_exact)).long(),
        // every operation in float32 (the Python scalars are cast to the tensor's dtype), truncated toward zero.
        let ratio = Float(distance) / Float(maxExact)
        let logScale = Float(log(Double(maxDistance) / Double(maxExact)))
        let scaled = logf(ratio) / logScale * Float(buckets - maxExact)
        let large = maxExact + (scaled.isFinite ? Int(scaled) : buckets)
        return bucket + min(large, buckets - 1)
    }

    /// The bias for every head, query and key: [heads, queryLength, keyLength].
    public func callAsFunction(queryLength: Int, keyLength: Int) -> Tensor {
        guard queryLength > 0, keyLength > 0 else { return Tensor(zeros: [heads, max(0, queryLength), max(0, keyLength)]) }
        // Distances repeat along diagonals: look each one up once.
        let distances = (-(queryLength - 1))...max(0, keyLength - 1)
        let bucketOf = distances.map {
            T5RelativePositionBias.bucket(relativePosition: $0, bidirectional: bidirectional,
                                          numBuckets: numBuckets, maxDistance: maxDistance)
        }
        var out = Tensor(zeros: [heads, queryLength, keyLength])
        weight.withFloats { table in
            out.withUnsafeMutableBufferPointer { o in
                for h in 0..<heads {
                    for i in 0..<queryLength {
                        let row = (h * queryLength + i) * keyLength
                        for j in 0..<keyLength {
                            o[row + j] = table[bucketOf[j - i - distances.lowerBound] * heads + h]
                        }
                    }
                }
            }
        }
        return out
    }
}
