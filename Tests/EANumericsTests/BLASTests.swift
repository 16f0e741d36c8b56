import Testing
@testable import EANumerics

@Suite("OpenBLAS")
struct BLASTests {
    @Test("OpenBLAS loads and names its kernel family")
    func loadsAndNamesItsKernels() throws {
        try BLAS.ensureAvailable()
        #expect(!BLAS.coreDescription.isEmpty)
        #expect(!BLAS.coreDescription.hasPrefix("unavailable"))
    }

    @Test("sgemm with transposes and leading dimensions matches a naive product")
    func sgemmMatchesNaiveProduct() throws {
        try BLAS.ensureAvailable()
        let (m, n, k) = (5, 4, 3)
        // A stored transposed (k×m, lda = m + 1), B plain (k×n, ldb = n), C with a wider row (ldc = n + 2).
        let lda = m + 1, ldc = n + 2
        let a = (0..<(k * lda)).map { Float($0 % 7) - 3 }
        let b = (0..<(k * n)).map { Float($0 % 5) * 0.5 }
        var c = [Float](repeating: 1, count: m * ldc)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(.transpose, .none, m: m, n: n, k: k, alpha: 2, a: ap.baseAddress!, lda: lda,
                       b: bp.baseAddress!, ldb: n, beta: 0.5, c: cp.baseAddress!, ldc: ldc)
        }}}
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += a[p * lda + i] * b[p * n + j] }
                #expect(c[i * ldc + j] == 2 * sum + 0.5)
            }
            #expect(c[i * ldc + n] == 1 && c[i * ldc + n + 1] == 1, "sgemm wrote past n in row \(i)")
        }
    }

    @Test("the missing-library error names the library and the Debian package, on one line")
    func missingLibraryErrorIsOneLine() {
        let error = NumericsError.blasUnavailable(library: "/nowhere/libopenblas.so.0", reason: "cannot open shared object file\nNo such file")
        #expect(error.description.contains("/nowhere/libopenblas.so.0"))
        #expect(error.description.contains("libopenblas0"))
        #expect(!error.description.contains("\n"))
    }
}

@Suite("Parallel loops")
struct ParallelTests {
    @Test("parallelChunks covers every index exactly once, in contiguous chunks")
    func chunksCoverEveryIndexOnce() {
        for count in [0, 1, 4095, 4096, 10_000, 100_003] {
            let seen = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(count, 1))
            defer { seen.deallocate() }
            seen.initialize(repeating: 0)
            parallelChunks(count, minimumChunk: 1000) { range in
                for i in range { seen[i] &+= 1 }
            }
            #expect(seen.prefix(count).allSatisfy { $0 == 1 }, "count \(count)")
        }
    }

    @Test("parallelFor runs each item once; JobQueue hands out each job once, in order")
    func parallelForAndJobQueue() {
        let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        defer { seen.deallocate() }
        seen.initialize(repeating: 0)
        parallelFor(64) { seen[$0] += 1 }
        #expect(seen.allSatisfy { $0 == 1 })
        let queue = JobQueue(count: 3)
        #expect([queue.next(), queue.next(), queue.next(), queue.next()] == [0, 1, 2, nil])
    }
}
