/// Everything that can be wrong with a safetensors file or a sharded checkpoint.
/// Each case names the file (and the tensor where there is one) and reads as one sentence a user can act on.
public enum SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    case cannotOpen(path: String, reason: String)
    /// Not a safetensors file but a failed download (Git LFS pointer, HTML page, JSON, other text).
    case notWeights(path: String, what: String)
    case headerTooSmall(path: String, fileSize: Int)
    case headerTooLarge(path: String, bytes: UInt64)
    case invalidHeaderLength(path: String, declared: UInt64, fileSize: Int)
    case headerNotUTF8(path: String)
    case invalidJSON(path: String, reason: String)
    case duplicateKey(path: String, key: String)
    case invalidMetadata(path: String, reason: String)
    case invalidTensorEntry(path: String, tensor: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case shapeOverflow(path: String, tensor: String)
    case sizeMismatch(path: String, tensor: String, expected: Int, actual: Int)
    case invalidOffsets(path: String, tensor: String, reason: String)
    case incompleteBuffer(path: String, dataEnd: Int, dataSize: Int)
    case tensorNotFound(path: String, tensor: String)
    case unsupportedConversion(path: String, tensor: String, from: DType, to: DType)
    case invalidIndex(path: String, reason: String)
    case missingShard(path: String, shard: String)
    case shardLacksTensor(path: String, shard: String, tensor: String)
    /// Two shards of one checkpoint both hold `tensor`.
    case duplicateTensor(path: String, tensor: String, firstShard: String, secondShard: String)
    /// A shard holds a tensor its index does not list.
    case unlistedTensor(path: String, shard: String, tensor: String)
    case unsupportedEncoding(dtype: DType)
    /// Stopped by Ctrl-C (or the caller) between blocks; nothing was left behind.
    case cancelled(path: String)
    case writeFailed(path: String, reason: String)
    case readFailed(path: String, reason: String)
    /// An output would replace something that appeared while it was being written.
    case destinationExists(path: String)
    case invalidWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .notWeights(path, what):
            return "\(path): not the weights but \(what)"
        case let .headerTooSmall(path, size):
            return "\(path): not a safetensors file: \(size) bytes is too short to hold the 8-byte header length"
        case let .headerTooLarge(path, bytes):
            return "\(path): header declares \(bytes) bytes, more than the 100,000,000 a safetensors header may have (not a safetensors file, or corrupt)"
        case let .invalidHeaderLength(path, declared, size):
            return "\(path): header declares \(declared) bytes but the file has only \(size) (truncated download?)"
        case let .headerNotUTF8(path):
            return "\(path): header is not valid UTF-8"
        case let .invalidJSON(path, reason):
            return "\(path): header is not a valid JSON object: \(reason)"
        case let .duplicateKey(path, key):
            return "\(path): header names '\(key)' twice"
        case let .invalidMetadata(path, reason):
            return "\(path): __metadata__ \(reason)"
        case let .invalidTensorEntry(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .unknownDType(path, tensor, dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: " ")
            return "\(path): tensor '\(tensor)' has dtype '\(dtype)', which is not one of the safetensors dtypes ea-weights reads (\(known))"
        case let .shapeOverflow(path, tensor):
            return "\(path): tensor '\(tensor)': shape × dtype size overflows"
        case let .sizeMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)': data_offsets span \(actual) bytes but shape and dtype need \(expected)"
        case let .invalidOffsets(path, tensor, reason):
            return "\(path): tensor '\(tensor)': invalid data_offsets: \(reason)"
        case let .incompleteBuffer(path, dataEnd, dataSize):
            return "\(path): tensors end at byte \(dataEnd) of the data section but it holds \(dataSize) bytes (truncated or padded file)"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor named '\(tensor)'"
        case let .unsupportedConversion(path, tensor, from, to):
            return "\(path): tensor '\(tensor)': cannot convert \(from.rawValue) to \(to.rawValue)"
        case let .invalidIndex(path, reason):
            return "\(path): invalid index: \(reason)"
        case let .missingShard(path, shard):
            return "\(path): shard '\(shard)' is missing (incomplete download?)"
        case let .shardLacksTensor(path, shard, tensor):
            return "\(path): index maps '\(tensor)' to '\(shard)', which does not contain it"
        case let .duplicateTensor(path, tensor, first, second):
            return "\(path): tensor '\(tensor)' is in both '\(first)' and '\(second)'"
        case let .unlistedTensor(path, shard, tensor):
            return "\(path): shard '\(shard)' holds '\(tensor)', which the index does not list (stale or mismatched shard?)"
        case let .unsupportedEncoding(dtype):
            return "cannot encode values as \(dtype.rawValue): only F32, F64, F16, BF16, F8_E4M3 and F8_E5M2 are supported"
        case let .cancelled(path):
            return "\(path): interrupted; nothing was left behind"
        case let .writeFailed(path, reason):
            return "\(path): write failed: \(reason)"
        case let .readFailed(path, reason):
            return "\(path): read failed: \(reason)"
        case let .destinationExists(path):
            return "\(path) already exists; remove it or choose another output"
        case let .invalidWrite(path, reason):
            return "\(path): \(reason)"
        }
    }
}
