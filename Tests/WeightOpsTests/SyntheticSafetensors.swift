import Foundation
import Safetensors
import TestSupport

/// Writes small safetensors files with chosen names, shapes and dtypes for tests (zero data unless values
/// are given), so edge cases need no fixture.
enum SyntheticSafetensors {
    struct Tensor {
        var name: String
        var dtype: DType = .f32
        var shape: [Int]
        /// Float32 values for F32 tensors; zeros otherwise.
        var values: [Float]? = nil
    }

    /// The header bytes (length prefix + JSON, padded to 8) for `tensors` laid out in order.
    static func header(_ tensors: [Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        var entries: [String] = []
        if !metadata.isEmpty {
            let members = metadata.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(quote($0.value))" }
            entries.append("\"__metadata__\":{\(members.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let bytes = t.shape.reduce(1, *) * t.dtype.size
            entries.append("\(quote(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array("{\(entries.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var length = UInt64(json.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + json
    }

    static func dataSize(_ tensors: [Tensor]) -> Int {
        tensors.reduce(0) { $0 + $1.shape.reduce(1, *) * $1.dtype.size }
    }

    @discardableResult
    static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws -> String {
        var bytes = header(tensors, metadata: metadata)
        for t in tensors {
            let count = t.shape.reduce(1, *)
            if let values = t.values, t.dtype == .f32 {
                precondition(values.count == count)
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
            } else {
                bytes += [UInt8](repeating: 0, count: count * t.dtype.size)
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ea-weights-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
