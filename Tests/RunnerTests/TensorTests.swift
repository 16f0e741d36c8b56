import Foundation
import Testing
@testable import Runner

@Suite("Tensor")
struct TensorTests {
    static func base(_ t: Tensor) -> UnsafePointer<Float>? { t.withUnsafeBufferPointer { $0.baseAddress } }

    @Test("copies share storage until one of them writes; the writer gets its own buffer")
    func copyOnWrite() {
        let pool = BufferPool(capacity: 1 << 20)
        BufferPool.$current.withValue(pool) {
            let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
            var b = a
            #expect(Self.base(a) == Self.base(b))
            b.withUnsafeMutableBufferPointer { $0[0] = 9 }
            #expect(a.storage == [1, 2, 3, 4])
            #expect(b.storage == [9, 2, 3, 4])
            #expect(Self.base(a) != Self.base(b))
            #expect(pool.statistics.freshAllocations == 2)

            // A uniquely held tensor is written in place: no copy, no allocation.
            let before = Self.base(b)
            b.withUnsafeMutableBufferPointer { $0[1] = 8 }
            Kernels.scale(&b, by: 2)
            #expect(Self.base(b) == before)
            #expect(b.storage == [18, 16, 6, 8])
            #expect(pool.statistics.freshAllocations == 2)
        }
    }

    @Test("reshaped views share the elements and are copied on write like any copy")
    func reshapeSharesUntilWrite() {
        var a = Tensor(shape: [2, 3], storage: [0, 1, 2, 3, 4, 5])
        var flat = a.reshaped([-1])
        #expect(flat.shape == [6])
        #expect(Self.base(flat) == Self.base(a))
        Kernels.map(&flat) { $0 + 10 }
        #expect(a.storage == [0, 1, 2, 3, 4, 5])
        #expect(flat.storage == [10, 11, 12, 13, 14, 15])
        a.storage = [5, 4, 3, 2, 1, 0]   // the array setter writes the elements, shape kept
        #expect(a.shape == [2, 3] && a.storage == [5, 4, 3, 2, 1, 0])
        #expect(flat.storage == [10, 11, 12, 13, 14, 15])
    }

    @Test("a tensor held by a closure or another thread keeps its values while the original changes")
    func copiesAcrossThreads() async {
        var a = Tensor(repeating: 1, shape: [1000])
        let snapshot = a
        let task = Task.detached { snapshot.storage.allSatisfy { $0 == 1 } }
        Kernels.map(&a) { $0 * 3 }
        #expect(await task.value)
        #expect(snapshot.storage.allSatisfy { $0 == 1 })
        #expect(a.storage.allSatisfy { $0 == 3 })
    }

    @Test("slice and concatenate copy rows along the first axis")
    func sliceAndConcatenate() {
        let a = Tensor(shape: [3, 2], storage: [1, 2, 3, 4, 5, 6])
        let middle = a.slice(first: 1..<3)
        #expect(middle.shape == [2, 2] && middle.storage == [3, 4, 5, 6])
        let joined = Tensor.concatenate([middle, a.slice(first: 0..<1)])
        #expect(joined.shape == [3, 2] && joined.storage == [3, 4, 5, 6, 1, 2])
        #expect(Tensor.concatenate([]).count == 0)
        #expect(a.slice(first: 1..<1).count == 0)
    }

    @Test("kernels that skip zeroing their output never read it: a reused NaN-filled buffer gives the same result")
    func uninitializedOutputsAreOverwritten() {
        let pool = BufferPool(capacity: 1 << 24)
        BufferPool.$current.withValue(pool) {
            func values(_ n: Int, _ seed: Float) -> [Float] { (0..<n).map { sinf(Float($0) * 0.37 + seed) } }
            let x = Tensor(shape: [2, 5, 6], storage: values(60, 0))
            let weight = Tensor(shape: [4, 6], storage: values(24, 1)), bias = Tensor(shape: [4], storage: values(4, 2))
            let image = Tensor(shape: [2, 3, 5, 4], storage: values(120, 3))
            let kernel = Tensor(shape: [4, 3, 3, 3], storage: values(108, 4))
            let mask = Tensor(shape: [2, 5], storage: [0, 0, -10000, 0, 0, 0, -10000, 0, 0, 0])
            let runs: [() -> Tensor] = [
                { Kernels.matmul(x.reshaped([10, 6]), weight.reshaped([6, 4])) },
                { weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
                    Kernels.linear(x, weight: w, bias: b, outFeatures: 4) } } },
                { kernel.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
                    Kernels.conv2d(image, weight: w, bias: b, outChannels: 4, kernel: (3, 3), stride: 1, padding: 1) } } },
                { kernel.withUnsafeBufferPointer { w in
                    Kernels.conv2d(image, weight: w, bias: nil, outChannels: 4, kernel: (3, 3), stride: 2, padding: 1) } },
                { Kernels.attention(q: x, k: x, v: x, heads: 2, scale: 0.5, keyBias: mask) },
                { Kernels.permute(image, [3, 1, 0, 2]) },
                { Kernels.upsampleNearest2x(image) },
                { Kernels.geglu(x) },
            ]
            for (i, run) in runs.enumerated() {
                var first = run()
                let expected = first.storage
                Kernels.map(&first) { _ in .nan }
                first = Tensor(zeros: [0])   // the NaN buffer goes back to the pool
                let reuses = pool.statistics.reuses
                let second = run()
                #expect(pool.statistics.reuses > reuses, "kernel \(i) did not reuse the buffer")
                #expect(second.storage == expected, "kernel \(i)")
            }
        }
    }
}
