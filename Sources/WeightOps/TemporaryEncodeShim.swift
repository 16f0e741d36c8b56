import Safetensors
#if canImport(Glibc)
import Glibc
#endif
// TEMPORARY until the safetensors helper's encoders and writer are in main; deleted on that merge.
public struct ConversionStats: Sendable, Equatable {
    public var overflowed = 0, underflowed = 0, nan = 0
    public static let zero = ConversionStats()
    public static func += (a: inout ConversionStats, b: ConversionStats) {
        a.overflowed += b.overflowed; a.underflowed += b.underflowed; a.nan += b.nan
    }
}
extension DTypeConversion {
    static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType, into out: UnsafeMutableRawBufferPointer) throws -> ConversionStats {
        var st = ConversionStats()
        for (i, v) in values.enumerated() {
            switch dtype {
            case .f32: out.storeBytes(of: v.bitPattern, toByteOffset: 4 * i, as: UInt32.self)
            case .f16:
                let h = Float16(v); if h.isInfinite && v.isFinite { st.overflowed += 1 }
                out.storeBytes(of: h.bitPattern, toByteOffset: 2 * i, as: UInt16.self)
            case .bf16:
                let x = v.bitPattern; let r = UInt16((x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
                out.storeBytes(of: r, toByteOffset: 2 * i, as: UInt16.self)
            default:
                let a = abs(v); var byte: UInt8 = 0
                if a >= 0x1p-6 {
                    let e = Int(a.exponent); let m = (a / Float(sign: .plus, exponent: e, significand: 1) - 1) * 8
                    var mi = Int(m.rounded(.toNearestOrEven)); var ee = e + 7
                    if mi == 8 { mi = 0; ee += 1 }
                    byte = UInt8(min(ee, 15) << 3 | mi)
                } else { byte = UInt8((a * 512).rounded(.toNearestOrEven)) }
                out[i] = byte | (v.sign == .minus ? 0x80 : 0)
            }
        }
        return st
    }
    static func convert(_ raw: UnsafeRawBufferPointer, from: DType, to: DType, into out: UnsafeMutableRawBufferPointer) throws -> ConversionStats {
        let n = raw.count / from.size
        var f = [Float](repeating: 0, count: n)
        f.withUnsafeMutableBufferPointer { decode(raw, dtype: from, into: $0) }
        return try f.withUnsafeBufferPointer { try encode($0, as: to, into: out) }
    }
}
enum StreamingFileWriter {
    static func write(path: String, tensors: [(String, DType, [Int])], metadata: [String: String],
                      body: (String, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let order = tensors.sorted { ($0.1.writeOrder, $0.0) < ($1.1.writeOrder, $1.0) }
        var entries: [(String, JSONValue)] = []
        if !metadata.isEmpty { entries.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        var off = 0
        for (n, d, s) in order {
            let b = s.reduce(d.size, *)
            entries.append((n, .object([("dtype", .string(d.rawValue)), ("shape", .array(s.map { .integer(Int64($0)) })), ("data_offsets", .array([.integer(Int64(off)), .integer(Int64(off + b))]))])))
            off += b
        }
        var json = Array(JSONValue.object(entries).compactText.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let tmp = path + ".tmp"
        guard let f = fopen(tmp, "wb") else { throw WeightOpsError.invalidInput(path: path, reason: "cannot write") }
        var ok = false
        defer { fclose(f); if !ok { unlink(tmp) } }
        var len = UInt64(json.count).littleEndian
        fwrite(&len, 8, 1, f); fwrite(json, 1, json.count, f)
        for (n, _, _) in order { try body(n) { b in if b.count > 0 { fwrite(b.baseAddress, 1, b.count, f) } } }
        fflush(f); ok = true
        rename(tmp, path)
    }
}
