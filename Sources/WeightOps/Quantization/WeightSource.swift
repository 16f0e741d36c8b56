import Foundation
import EANumerics
import Safetensors

/// Where a quantizer reads a weight's float32 values, one contiguous range of elements (a unit of work) at a
/// time: memory it is handed (the range itself, no copy), or a tensor of a file. A file's F32 tensor is copied
/// with pread into the worker's own buffer, small enough to stay in cache between the copy and the kernel that
/// reads it: the page cache is then read once per pass, without faulting the mapping in and unmapping it (on the
/// 2.4 GB transformer that was a third of `convert --to int8|fp8`). Other dtypes are decoded from the mapping.
struct WeightSource: @unchecked Sendable {
    let count: Int
    private let memory: UnsafeBufferPointer<Float>?
    private let view: TensorView?

    init(_ w: UnsafeBufferPointer<Float>) {
        (count, memory, view) = (w.count, w, nil)
    }

    init(_ view: TensorView) {
        (count, memory, self.view) = (view.elementCount, nil, view)
    }

    /// Runs `body(unit, range, values)` for every unit 0..<units on all cores, `values` being the elements
    /// `range = elements(unit)` (at most `maxElements` of them); the first read error, if any, is thrown after the loop.
    func forEachUnit(_ units: Int, maxElements: Int, elements: (Int) -> Range<Int>,
                     _ body: (Int, Range<Int>, UnsafeBufferPointer<Float>) -> Void) throws {
        guard units > 0 else { return }
        if let memory {
            parallelFor(units) { unit in
                let range = elements(unit)
                body(unit, range, UnsafeBufferPointer(rebasing: memory[range]))
            }
            return
        }
        guard let view else { return }
        let workers = min(ProcessInfoCache.activeProcessorCount, units)
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: workers * maxElements)
        defer { scratch.deallocate() }
        let mapped = view.dtype != .f32
        // Decoding reads the mapping: ask the kernel ahead, and unmap what was read once done (the page cache keeps it).
        if mapped { view.file.readAhead(from: view.fileOffset) }
        defer { if mapped { view.releaseMapping() } }
        let queue = JobQueue(count: units)
        let failure = FirstError()
        withoutActuallyEscaping(elements) { elements in
            withoutActuallyEscaping(body) { body in
                parallelFor(workers) { worker in
                    let buffer = UnsafeMutableBufferPointer(rebasing: scratch[(worker * maxElements)..<((worker + 1) * maxElements)])
                    while failure.error == nil, let unit = queue.next() {
                        let range = elements(unit)
                        precondition(range.count <= maxElements, "weight source unit larger than its buffer")
                        let values = UnsafeMutableBufferPointer(rebasing: buffer[0..<range.count])
                        do {
                            if !mapped {
                                let bytes = (view.fileOffset + range.lowerBound * 4)..<(view.fileOffset + range.upperBound * 4)
                                try view.file.read(bytes, into: UnsafeMutableRawBufferPointer(values))
                            } else {
                                view.decode(elements: range, into: values)
                            }
                        } catch {
                            failure.keep(error)
                            return
                        }
                        body(unit, range, UnsafeBufferPointer(values))
                    }
                }
            }
        }
        if let error = failure.error { throw error }
    }
}

/// The first error of a parallel loop's workers.
private final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?
    var error: (any Error)? { lock.withLock { first } }
    func keep(_ error: any Error) { lock.withLock { if first == nil { first = error } } }
}
