import Foundation

/// A truncated SVD `A ≈ u · diag(s) · vh` of a row-major (m×n) float32 matrix, and how much of A it keeps.
public struct LowRankFactors: Sendable {
    public let rows: Int
    public let columns: Int
    /// (rows, rank) row-major, orthonormal columns.
    public var u: [Float]
    /// (rank,) descending.
    public var s: [Float]
    /// (rank, columns) row-major, orthonormal rows.
    public var vh: [Float]
    /// ‖A‖²_F, in double from the data.
    public let totalEnergy: Double
    /// Σ s², the part of ‖A‖²_F the factors keep (‖A − u·diag(s)·vh‖²_F = totalEnergy − keptEnergy).
    public var keptEnergy: Double { s.reduce(0) { $0 + Double($1) * Double($1) } }
    /// How the factors were computed: "full" (sgesdd of A), "randomized" (subspace iteration), "factored" (QR of
    /// the factors of a product).
    public let method: String
    /// Power iterations of the randomized method (0 otherwise).
    public let iterations: Int

    public var rank: Int { s.count }

    /// ‖u·diag(s)·vh‖_F / ‖A‖_F, kohya's "fro retained" (1 for a zero matrix).
    public var retainedFraction: Double { totalEnergy > 0 ? (min(keptEnergy, totalEnergy) / totalEnergy).squareRoot() : 1 }
    /// ‖A − u·diag(s)·vh‖_F / ‖A‖_F.
    public var relativeError: Double { totalEnergy > 0 ? (max(0, totalEnergy - keptEnergy) / totalEnergy).squareRoot() : 0 }

    /// Keeps the first `rank` singular triplets.
    public func truncated(to rank: Int) -> LowRankFactors {
        let r = min(rank, self.rank)
        var out = self
        out.s = Array(s.prefix(r))
        out.vh = Array(vh.prefix(r * columns))
        if r < self.rank {
            var u = [Float](repeating: 0, count: rows * r)
            for i in 0..<rows { for j in 0..<r { u[i * r + j] = self.u[i * self.rank + j] } }
            out.u = u
        }
        return out
    }
}

/// Truncated SVDs for the LoRA tools, each documented with the route it takes.
public enum LowRank {
    /// The full thin SVD of a row-major (m×n) matrix by LAPACK's sgesdd (what `torch.linalg.svd` calls on a CPU).
    /// A row-major buffer is the column-major transpose, so sgesdd runs on Aᵀ = W Σ Xᵀ: its "U" buffer read
    /// row-major is Wᵀ = Vh and its "VT" buffer read row-major is X = U, with no copies.
    public static func fullSVD(_ a: [Float], rows m: Int, columns n: Int) throws -> LowRankFactors {
        let energy = squaredNorm(a)
        var work = a
        let (w, s, xt) = try LAPACK.sgesdd(&work, m: n, n: m)
        return LowRankFactors(rows: m, columns: n, u: xt, s: s, vh: w, totalEnergy: energy, method: "full", iterations: 0)
    }

    /// The rank-`rank` truncated SVD of a row-major (m×n) matrix.
    ///
    /// Randomized subspace iteration (Halko, Martinsson & Tropp 2011, algorithm 4.4) on a block of
    /// k = rank + `oversampling` Gaussian vectors, re-orthonormalized by QR after every product, until a
    /// certificate holds: with B = QᵀA and E = A − QB computed, the rank-r error² is ‖E‖² + Σ_{i>r} σᵢ(B)² and
    /// the optimum is at least Σ_{i>r} σᵢ(B)², so ‖E‖² ≤ `tolerance` × that tail (or ≤ 1e-11 ‖A‖², float32's
    /// floor) bounds the excess over the Eckart–Young optimum. A change of rank ≤ k passes on the first block,
    /// with no power iteration. When k is
    /// more than half of min(m, n), or the iteration has not settled after `maxIterations`, it computes the
    /// full SVD instead, so the result is always the optimal truncation up to that tolerance.
    public static func truncatedSVD(_ a: [Float], rows m: Int, columns n: Int, rank: Int, oversampling: Int = 16,
                                    tolerance: Double = 2e-5, maxIterations: Int = 8, seed: UInt64 = 0x5EED) throws -> LowRankFactors {
        precondition(a.count == m * n && rank >= 1, "truncatedSVD: shape and rank")
        let p = min(m, n)
        let k = min(p, rank + oversampling)
        if 2 * k > p {
            return try fullSVD(a, rows: m, columns: n).truncated(to: rank)
        }
        let total = squaredNorm(a)
        // Ωᵀ (k×n) row-major; Yᵀ = Ωᵀ·Aᵀ (k×m) row-major is Y = A·Ω column-major (m×k).
        var omegaT = gaussian(count: k * n, seed: seed)
        var q = [Float](repeating: 0, count: k * m)
        multiply(omegaT, k, n, transposedA: a, m, into: &q)
        omegaT = []
        try LAPACK.orthonormalize(&q, m: m, n: k)
        var b = [Float](repeating: 0, count: k * n)
        var qb: [Float] = []
        var small = LowRankFactors(rows: 0, columns: 0, u: [], s: [], vh: [], totalEnergy: 0, method: "", iterations: 0)
        var iterations = 0
        while true {
            // B = Qᵀ·A (k×n) row-major, which is Z = Aᵀ·Q column-major (n×k).
            a.withUnsafeBufferPointer { ap in q.withUnsafeBufferPointer { qp in b.withUnsafeMutableBufferPointer { bp in
                guard let ap = ap.baseAddress, let qp = qp.baseAddress, let bp = bp.baseAddress else { return }
                BLAS.sgemm(.none, .none, m: k, n: n, k: m, a: qp, lda: m, b: ap, ldb: n, c: bp, ldc: n)
            } } }
            // The certificate: with E = A − Q·B (computed, not by energy differences), our rank-r error² is
            // ‖E‖² + Σ_{i>r} σᵢ(B)², and the optimum is at least Σ_{i>r} σᵢ(B)² (σᵢ(B) ≤ σᵢ(A)). So ‖E‖² below
            // `tolerance` × that tail (or below float32's resolution of ‖A‖²) bounds our excess over the optimum.
            let outside = residualEnergy(a, rows: m, columns: n, inner: k, left: q, leftIsTransposed: true, right: b)
            // SVD of B through a QR of Bᵀ (column-major n×k, the b buffer): Bᵀ = Q_b R, R = U_r S V_r, so
            // B = V_rᵀ S (Q_b U_r)ᵀ; only a k×k SVD, BLAS-3 for the rest.
            qb = b
            let r = try LAPACK.orthonormalize(&qb, m: n, n: k)
            small = try fullSVD(r, rows: k, columns: k)
            let tailB = small.s.dropFirst(rank).reduce(0.0) { $0 + Double($1) * Double($1) }
            if outside <= max(tolerance * tailB, 1e-11 * total) { break }
            if iterations == maxIterations {
                return try fullSVD(a, rows: m, columns: n).truncated(to: rank)
            }
            iterations += 1
            // Z = Aᵀ·Q (in b, column-major n×k) → orthonormal, then Y = A·Z (k×m row-major = column-major m×k).
            try LAPACK.orthonormalize(&b, m: n, n: k)
            multiply(b, k, n, transposedA: a, m, into: &q)
            try LAPACK.orthonormalize(&q, m: m, n: k)
        }
        // U = Q · V_r[:rank]ᵀ (Q column-major m×k = row-major Qᵀ), Vh = U_r[:, :rank]ᵀ · Q_bᵀ.
        var u = [Float](repeating: 0, count: m * rank)
        var vh = [Float](repeating: 0, count: rank * n)
        q.withUnsafeBufferPointer { qp in small.vh.withUnsafeBufferPointer { vp in u.withUnsafeMutableBufferPointer { up in
            guard let qp = qp.baseAddress, let vp = vp.baseAddress, let up = up.baseAddress else { return }
            BLAS.sgemm(.transpose, .transpose, m: m, n: rank, k: k, a: qp, lda: m, b: vp, ldb: k, c: up, ldc: rank)
        } } }
        small.u.withUnsafeBufferPointer { ur in qb.withUnsafeBufferPointer { qp in vh.withUnsafeMutableBufferPointer { vp in
            guard let ur = ur.baseAddress, let qp = qp.baseAddress, let vp = vp.baseAddress else { return }
            BLAS.sgemm(.transpose, .none, m: rank, n: n, k: k, a: ur, lda: k, b: qp, ldb: n, c: vp, ldc: n)
        } } }
        return LowRankFactors(rows: m, columns: n, u: u, s: Array(small.s.prefix(rank)), vh: vh, totalEnergy: total,
                              method: "randomized", iterations: iterations)
    }

    /// One term `scale · up · down` of a sum of low-rank products: up (m×r) and down (r×n) row-major.
    public struct Term: Sendable {
        public let up: [Float]
        public let down: [Float]
        public let rank: Int
        public let scale: Float

        public init(up: [Float], down: [Float], rank: Int, scale: Float) {
            self.up = up
            self.down = down
            self.rank = rank
            self.scale = scale
        }
    }

    /// The SVD of `Σ scale_i · up_i · down_i` (m×n) without forming it: with U = [s₁up₁ | s₂up₂ …] (m×K) and
    /// D = [down₁; down₂; …] (K×n), U = Q₁R₁ and Dᵀ = Q₂R₂ (sgeqrf/sorgqr), so U·D = Q₁ (R₁R₂ᵀ) Q₂ᵀ and the SVD
    /// of the small core R₁R₂ᵀ gives the exact one, truncated to `rank`, in O((m + n)·K²) instead of O(m·n·min).
    /// This is what kohya's resize_lora / svd_merge_lora compute with a full SVD of the product.
    public static func productSVD(_ terms: [Term], rows m: Int, columns n: Int, rank: Int) throws -> LowRankFactors {
        let big = terms.reduce(0) { $0 + $1.rank }
        precondition(big > 0 && rank >= 1, "productSVD needs at least one term")
        if big >= min(m, n) / 2 {
            // No saving: form the product and decompose it.
            var full = [Float](repeating: 0, count: m * n)
            for t in terms {
                t.up.withUnsafeBufferPointer { u in t.down.withUnsafeBufferPointer { d in full.withUnsafeMutableBufferPointer { c in
                    guard let u = u.baseAddress, let d = d.baseAddress, let c = c.baseAddress else { return }
                    BLAS.sgemm(.none, .none, m: m, n: n, k: t.rank, alpha: t.scale, a: u, lda: t.rank, b: d, ldb: n, beta: 1, c: c, ldc: n)
                } } }
            }
            let f = try fullSVD(full, rows: m, columns: n).truncated(to: rank)
            return LowRankFactors(rows: m, columns: n, u: f.u, s: f.s, vh: f.vh, totalEnergy: f.totalEnergy, method: "full", iterations: 0)
        }
        // U column-major (m×K); Dᵀ column-major (n×K) is D row-major: the down rows one after another.
        var uc = [Float](repeating: 0, count: m * big)
        var dt = [Float]()
        dt.reserveCapacity(n * big)
        var column = 0
        for t in terms {
            for i in 0..<m { for j in 0..<t.rank { uc[(column + j) * m + i] = t.scale * t.up[i * t.rank + j] } }
            dt.append(contentsOf: t.down)
            column += t.rank
        }
        let r1 = try LAPACK.orthonormalize(&uc, m: m, n: big)
        let r2 = try LAPACK.orthonormalize(&dt, m: n, n: big)
        // Core C = R₁·R₂ᵀ (K×K), row-major.
        var core = [Float](repeating: 0, count: big * big)
        r1.withUnsafeBufferPointer { a in r2.withUnsafeBufferPointer { b in core.withUnsafeMutableBufferPointer { c in
            guard let a = a.baseAddress, let b = b.baseAddress, let c = c.baseAddress else { return }
            BLAS.sgemm(.none, .transpose, m: big, n: big, k: big, a: a, lda: big, b: b, ldb: big, c: c, ldc: big)
        } } }
        let small = try fullSVD(core, rows: big, columns: big).truncated(to: rank)
        let r = small.rank
        // U = Q₁·Uc (Q₁ column-major = row-major Q₁ᵀ), Vh = Vhc·Q₂ᵀ (Q₂ column-major = row-major Q₂ᵀ).
        var u = [Float](repeating: 0, count: m * r)
        var vh = [Float](repeating: 0, count: r * n)
        uc.withUnsafeBufferPointer { q in small.u.withUnsafeBufferPointer { x in u.withUnsafeMutableBufferPointer { c in
            guard let q = q.baseAddress, let x = x.baseAddress, let c = c.baseAddress else { return }
            BLAS.sgemm(.transpose, .none, m: m, n: r, k: big, a: q, lda: m, b: x, ldb: r, c: c, ldc: r)
        } } }
        small.vh.withUnsafeBufferPointer { x in dt.withUnsafeBufferPointer { q in vh.withUnsafeMutableBufferPointer { c in
            guard let x = x.baseAddress, let q = q.baseAddress, let c = c.baseAddress else { return }
            BLAS.sgemm(.none, .none, m: r, n: n, k: big, a: x, lda: big, b: q, ldb: n, c: c, ldc: n)
        } } }
        return LowRankFactors(rows: m, columns: n, u: u, s: small.s, vh: vh, totalEnergy: small.totalEnergy,
                              method: "factored", iterations: 0)
    }

    /// ‖A − up·down‖_F, A (m×n), up (m×r), down (r×n) row-major.
    public static func residualNorm(_ a: [Float], rows m: Int, columns n: Int, up: [Float], down: [Float], rank r: Int) -> Double {
        residualEnergy(a, rows: m, columns: n, inner: r, left: up, leftIsTransposed: false, right: down).squareRoot()
    }

    /// ‖A − L·R‖²_F with R (inner×n) row-major and L (m×inner) row-major, or stored as its transpose (inner×m)
    /// when `leftIsTransposed`; computed 256 rows at a time (sgemm into a copy of those rows), so no m×n buffer.
    static func residualEnergy(_ a: [Float], rows m: Int, columns n: Int, inner: Int, left: [Float], leftIsTransposed: Bool,
                               right: [Float]) -> Double {
        let block = 256
        var buffer = [Float](repeating: 0, count: min(m, block) * n)
        var total = 0.0
        var i0 = 0
        while i0 < m {
            let h = min(block, m - i0)
            a.withUnsafeBufferPointer { ap in left.withUnsafeBufferPointer { lp in right.withUnsafeBufferPointer { rp in
                buffer.withUnsafeMutableBufferPointer { bp in
                    guard let ap = ap.baseAddress, let lp = lp.baseAddress, let rp = rp.baseAddress, let bp = bp.baseAddress else { return }
                    bp.update(from: ap + i0 * n, count: h * n)
                    if leftIsTransposed {
                        BLAS.sgemm(.transpose, .none, m: h, n: n, k: inner, alpha: -1, a: lp + i0, lda: m, b: rp, ldb: n,
                                   beta: 1, c: bp, ldc: n)
                    } else {
                        BLAS.sgemm(.none, .none, m: h, n: n, k: inner, alpha: -1, a: lp + i0 * inner, lda: inner, b: rp, ldb: n,
                                   beta: 1, c: bp, ldc: n)
                    }
                }
            } } }
            total += squaredNorm(h * n == buffer.count ? buffer : Array(buffer.prefix(h * n)))
            i0 += h
        }
        return total
    }

    /// ‖x‖²: float32 SIMD partial sums over blocks of 1024 values, accumulated in double.
    public static func squaredNorm(_ x: [Float]) -> Double {
        var total = 0.0
        x.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            var i = 0
            while i < p.count {
                let end = min(p.count, i + 1024)
                var acc = SIMD8<Float>(repeating: 0)
                var j = i
                while j + 8 <= end {
                    let v = UnsafeRawPointer(base + j).loadUnaligned(as: SIMD8<Float>.self)
                    acc += v * v
                    j += 8
                }
                var partial = Double(acc.sum())
                while j < end { partial += Double(base[j]) * Double(base[j]); j += 1 }
                total += partial
                i = end
            }
        }
        return total
    }

    /// out (k×m, row-major) = left (k×n, row-major) · Aᵀ, A (m×n) row-major.
    private static func multiply(_ left: [Float], _ k: Int, _ n: Int, transposedA a: [Float], _ m: Int, into out: inout [Float]) {
        left.withUnsafeBufferPointer { l in a.withUnsafeBufferPointer { ap in out.withUnsafeMutableBufferPointer { o in
            guard let l = l.baseAddress, let ap = ap.baseAddress, let o = o.baseAddress else { return }
            BLAS.sgemm(.none, .transpose, m: k, n: m, k: n, a: l, lda: n, b: ap, ldb: n, c: o, ldc: m)
        } } }
    }

    /// Standard normal values (Box–Muller on a xorshift stream): reproducible for a seed.
    static func gaussian(count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> Double {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                let r = (-2 * Foundation.log(next())).squareRoot(), t = 2 * Double.pi * next()
                buffer[i] = Float(r * Foundation.cos(t))
                if i + 1 < count { buffer[i + 1] = Float(r * Foundation.sin(t)) }
                i += 2
            }
            initialized = count
        }
    }
}
