import Safetensors
// TEMPORARY until the safetensors helper's encoders are in main; deleted on that merge.
extension DTypeConversion {
    static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType, into out: UnsafeMutableRawBufferPointer) throws -> Int {
        for (i, v) in values.enumerated() {
            let a = abs(v); var byte: UInt8 = 0
            if a >= 0x1p-6 {
                let e = Int(a.exponent); let m = (a / Float(sign: .plus, exponent: e, significand: 1) - 1) * 8
                var mi = Int(m.rounded(.toNearestOrEven)); var ee = e + 7
                if mi == 8 { mi = 0; ee += 1 }
                byte = UInt8(min(ee, 15) << 3 | mi)
            } else { byte = UInt8((a * 512).rounded(.toNearestOrEven)) }
            out[i] = byte | (v.sign == .minus ? 0x80 : 0)
        }
        return 0
    }
}
