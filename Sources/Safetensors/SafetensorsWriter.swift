#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a write produced.
public struct WriteReport: Sendable {
    /// The file written.
    public let path: String
    public let fileSize: Int
    /// The tensors in file order, with their offsets.
    public let tensors: [TensorInfo]
    /// For every tensor that was encoded or converted to another dtype: what the conversion lost.
    public let conversions: [String: ConversionStats]

    /// The converted tensors that lost values (overflow, underflow to zero, NaN), for warnings.
    public var lossyConversions: [String: ConversionStats] { conversions.filter { !$0.value.isClean } }
    public var totalConversion: ConversionStats { conversions.values.reduce(.zero, +) }
}

/// What a sharded write produced.
public struct ShardedWriteReport: Sendable {
    /// One report per file, in shard order.
    public let shards: [WriteReport]
    /// The index file, or nil when everything fit in one file (then named `<baseName>.safetensors`, as
    /// transformers does).
    public let indexPath: String?
    /// The index's `total_size`: bytes of tensor data over all shards.
    public let totalSize: Int

    public var conversions: [String: ConversionStats] {
        shards.reduce(into: [:]) { all, shard in all.merge(shard.conversions) { a, _ in a } }
    }
    public var lossyConversions: [String: ConversionStats] { conversions.filter { !$0.value.isClean } }
    public var totalConversion: ConversionStats { conversions.values.reduce(.zero, +) }
}

/// Writes .safetensors files byte-identical to safetensors' `save_file` for the same tensors (see `FileLayout`),
/// streaming one tensor, and within a tensor one chunk, at a time, so a 10 GB output never sits in memory.
///
/// Every file is written to a hidden temporary sibling, fsynced and renamed into place: after an error, a
/// cancellation or Ctrl-C (`Interruption`), no new or half-written file remains and a
/// file being replaced is untouched.
public struct SafetensorsWriter {
    /// `__metadata__` for every file written (nil: none, as `save_file(..., metadata=None)`). transformers
    /// writes `["format": "pt"]`.
    public var metadata: [String: String]?
    /// Called with (bytes written, total bytes) of the current file after each chunk of at least a few MB
    /// and at the end of each file.
    public var progress: ((Int, Int) -> Void)?
    /// Polled between chunks; returning true stops the write with `SafetensorsError.cancelled` and removes the
    /// temporary file. Swift task cancellation stops it as well.
    public var isCancelled: () -> Bool
    /// Sees what each encoded or converted tensor lost right after it is written; throwing stops the write and
    /// nothing is put in place (to refuse, say, values that overflow F16).
    public var checkConversion: ((_ tensor: String, _ dtype: DType, _ stats: ConversionStats) throws -> Void)?
    /// Metadata known only once the tensor data is written (say, hashes of the inputs computed meanwhile on
    /// another core). Called after each file's data; the header is then rewritten in place with its result, so
    /// that must encode to exactly the length `metadata` does (fixed-length placeholders there).
    public var finalMetadata: (() throws -> [String: String]?)?

    public init(metadata: [String: String]? = nil, progress: ((Int, Int) -> Void)? = nil,
                isCancelled: @escaping () -> Bool = { false },
                checkConversion: ((_ tensor: String, _ dtype: DType, _ stats: ConversionStats) throws -> Void)? = nil,
                finalMetadata: (() throws -> [String: String]?)? = nil) {
        self.metadata = metadata
        self.progress = progress
        self.isCancelled = isCancelled
        self.checkConversion = checkConversion
        self.finalMetadata = finalMetadata
    }

    /// Writes `tensors` to the file `path` (its folder must exist), replacing any file there atomically.
    @discardableResult
    public func write(_ tensors: [OutputTensor], to path: String) throws -> WriteReport {
        let file = try writeTemporary(tensors, destination: path)
        defer { file.temporary.discard() }
        try file.temporary.moveIntoPlace()
        return file.report
    }

    /// Writes `tensors` as shards of at most `maxShardBytes` bytes of tensor data each, in the order given,
    /// as transformers' `shard_checkpoint` splits a state dict (a new shard starts when the next tensor would
    /// exceed the limit and the current one is not empty; a larger tensor gets a shard of its own), named
    /// `<baseName>-00001-of-0000N.safetensors`, plus `<baseName>.safetensors.index.json` formatted as
    /// `save_pretrained` writes it. A single shard is written as `<baseName>.safetensors` without an index.
    /// The folder is created if needed. Files of an earlier checkpoint with the same base name (shards, index,
    /// single file) that the new one does not overwrite are removed once the new one is in place.
    @discardableResult
    public func writeSharded(_ tensors: [OutputTensor], to folder: String, maxShardBytes: Int,
                             baseName: String = "model") throws -> ShardedWriteReport {
        guard maxShardBytes > 0 else {
            throw SafetensorsError.invalidWrite(path: folder, reason: "the maximum shard size must be positive")
        }
        guard !baseName.isEmpty, !baseName.contains("/") else {
            throw SafetensorsError.invalidWrite(path: folder, reason: "'\(baseName)' is not a file base name")
        }
        var seen = Set<String>()
        for t in tensors {
            try t.validate(path: folder)
            guard seen.insert(t.name).inserted else {
                throw SafetensorsError.invalidWrite(path: folder, reason: "tensor '\(t.name)' is given twice")
            }
        }
        let createdFolder = FileSystem.kind(folder) == .missing
        try FileSystem.makeDirectories(folder)
        var succeeded = false
        defer { if createdFolder && !succeeded { FileSystem.removeEmptyFolder(folder) } }

        let groups = try ShardPlan.split(tensors, maxShardBytes: maxShardBytes, path: folder)
        let names = groups.count == 1 ? ["\(baseName).safetensors"]
                                      : ShardPlan.shardNames(baseName: baseName, count: groups.count)
        var written: [(temporary: AtomicOutput.File, report: WriteReport)] = []
        defer { for w in written { w.temporary.discard() } }
        for (group, name) in zip(groups, names) {
            written.append(try writeTemporary(group, destination: FileSystem.join(folder, name)))
        }

        var indexPath: String?
        var totalSize = 0
        for w in written { totalSize += w.report.tensors.reduce(0) { $0 + $1.byteCount } }
        var indexFile: AtomicOutput.File?
        defer { indexFile?.discard() }
        if groups.count > 1 {
            var weightMap: [String: String] = [:]
            for (w, name) in zip(written, names) {
                for t in w.report.tensors { weightMap[t.name] = name }
            }
            let index = ShardIndex(totalSize: totalSize, weightMap: weightMap)
            let path = FileSystem.join(folder, "\(baseName).safetensors.index.json")
            let file = try AtomicOutput.File(destination: path)
            indexFile = file
            try index.encoded().withUnsafeBytes { try file.append($0) }
            try file.finishWriting()
            indexPath = path
        }
        // Everything is on disk under temporary names: now move it into place, index last.
        for w in written { try w.temporary.moveIntoPlace() }
        try indexFile?.moveIntoPlace()
        ShardPlan.removeStaleFiles(in: folder, baseName: baseName, keeping: Set(names), indexWritten: indexPath != nil)
        succeeded = true
        return ShardedWriteReport(shards: written.map(\.report), indexPath: indexPath, totalSize: totalSize)
    }

    /// Writes one complete file under a temporary name next to `destination` (fsynced and closed, not yet
    /// renamed). The caller moves it into place or discards it.
    private func writeTemporary(_ tensors: [OutputTensor], destination: String) throws
        -> (temporary: AtomicOutput.File, report: WriteReport)
    {
        for t in tensors { try t.validate(path: destination) }
        let layout = try FileLayout(tensors.map(\.entry), metadata: metadata, path: destination)
        var byName: [String: OutputTensor] = [:]
        for t in tensors { byName[t.name] = t }

        let file = try AtomicOutput.File(destination: destination)
        do {
            try file.checkSpace(layout.fileSize)
            try layout.prefix.withUnsafeBytes { try file.append($0) }
            var conversions: [String: ConversionStats] = [:]
            var lastReport = 0
            for info in layout.tensors {
                guard let tensor = byName[info.name] else { continue }
                let stats = try stream(tensor, bytes: info.byteCount, into: file) {
                    let done = file.bytesWritten
                    if done - lastReport >= 16 << 20 {
                        lastReport = done
                        progress?(done, layout.fileSize)
                    }
                }
                if let stats {
                    conversions[info.name] = stats
                    try checkConversion?(info.name, info.dtype, stats)
                }
            }
            var header: [UInt8]?
            if let finalMetadata {
                header = try FileLayout(tensors.map(\.entry), metadata: try finalMetadata(), path: destination).prefix
                guard header?.count == layout.prefix.count else {
                    throw SafetensorsError.invalidWrite(
                        path: destination, reason: "the final metadata changes the header's length; it cannot be written in place")
                }
            }
            try file.finishWriting(header: header)
            guard file.bytesWritten == layout.fileSize else {
                throw SafetensorsError.writeFailed(
                    path: destination, reason: "wrote \(file.bytesWritten) bytes, the layout needs \(layout.fileSize)")
            }
            progress?(layout.fileSize, layout.fileSize)
            return (file, WriteReport(path: destination, fileSize: layout.fileSize, tensors: layout.tensors,
                                      conversions: conversions))
        } catch {
            file.discard()
            throw error
        }
    }

    private func checkCancelled(_ path: String) throws {
        if isCancelled() || Task.isCancelled { throw SafetensorsError.cancelled(path: path) }
    }

    /// Appends one tensor's bytes; returns conversion counts when values were encoded or converted.
    private func stream(_ tensor: OutputTensor, bytes: Int, into file: AtomicOutput.File,
                        chunkDone: () -> Void) throws -> ConversionStats? {
        let path = file.destination
        let outSize = tensor.dtype.size
        let chunkElements = max(1, AtomicOutput.File.stagingBytes / 4 / max(outSize, 1))
        switch tensor.source {
        case let .view(view):
            if view.dtype == tensor.dtype {
                // Straight from the source mapping, dropping its pages behind us so resident memory stays flat.
                view.file.adviseSequential(view.byteRange)
                try view.file.forEachBlock(in: view.byteRange, blockSize: 8 << 20) { block in
                    try checkCancelled(path)
                    try file.append(block)
                    chunkDone()
                }
                return nil
            }
            var stats = ConversionStats.zero
            let total = view.elementCount
            var start = 0
            while start < total {
                try checkCancelled(path)
                let count = min(chunkElements, total - start)
                let inRange = (view.fileOffset + start * view.dtype.size)..<(view.fileOffset + (start + count) * view.dtype.size)
                view.file.readAhead(from: inRange.lowerBound)
                try file.withStagingSpace(maxBytes: count * outSize) { space in
                    try view.file.withBytes(inRange) { raw in
                        stats += try DTypeConversion.convert(
                            raw, from: view.dtype, to: tensor.dtype,
                            into: UnsafeMutableRawBufferPointer(rebasing: space[0..<(count * outSize)]))
                    }
                    return count * outSize
                }
                view.file.adviseDontNeed(inRange)
                start += count
                chunkDone()
            }
            return stats
        case let .bytes(data):
            try checkCancelled(path)
            try data.withUnsafeBytes { try file.append($0) }
            chunkDone()
            return nil
        case let .floats(values):
            var stats = ConversionStats.zero
            try values.withUnsafeBufferPointer { all in
                var start = 0
                while start < all.count {
                    try checkCancelled(path)
                    let count = min(chunkElements, all.count - start)
                    try file.withStagingSpace(maxBytes: count * outSize) { space in
                        stats += try DTypeConversion.encode(
                            UnsafeBufferPointer(rebasing: all[start..<(start + count)]), as: tensor.dtype,
                            into: UnsafeMutableRawBufferPointer(rebasing: space[0..<(count * outSize)]))
                        return count * outSize
                    }
                    start += count
                    chunkDone()
                }
            }
            return stats
        case let .fill(fill):
            try checkCancelled(path)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
            defer { buffer.deallocate() }
            let exact = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
            exact.initializeMemory(as: UInt8.self, repeating: 0)
            try fill(exact)
            try file.append(UnsafeRawBufferPointer(exact))
            chunkDone()
            return nil
        case let .float32Chunks(produce):
            let total = bytes / outSize
            // Whole rows of the last dimension per chunk when a row fits, for producers that compute by rows.
            let row = max(1, tensor.shape.last ?? 1)
            let step = row <= chunkElements ? chunkElements / row * row : chunkElements
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, min(step, total)))
            defer { scratch.deallocate() }
            var stats = ConversionStats.zero
            var start = 0
            while start < total {
                try checkCancelled(path)
                let count = min(step, total - start)
                let chunk = UnsafeMutableBufferPointer(rebasing: scratch[0..<count])
                chunk.initialize(repeating: 0)
                try produce(start..<(start + count), chunk)
                // The scratch may exceed the staging buffer's free space: encode in staging-sized pieces.
                var done = 0
                while done < count {
                    let piece = min(count - done, chunkElements)
                    try file.withStagingSpace(maxBytes: piece * outSize) { space in
                        stats += try DTypeConversion.encode(
                            UnsafeBufferPointer(rebasing: chunk[done..<(done + piece)]), as: tensor.dtype,
                            into: UnsafeMutableRawBufferPointer(rebasing: space[0..<(piece * outSize)]))
                        return piece * outSize
                    }
                    done += piece
                }
                start += count
                chunkDone()
            }
            return stats
        }
    }
}
