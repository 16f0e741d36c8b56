/// The element types of the safetensors format, by their header names.
public enum DType: String, CaseIterable, Sendable, Codable, Comparable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }

    /// The order safetensors' `save_file` writes tensors in: by alignment (largest first), then by dtype,
    /// then by name. This is the position of the dtype in that order.
    public var writeOrder: Int {
        switch self {
        case .u64: return 0
        case .i64: return 1
        case .f64: return 2
        case .f32: return 3
        case .u32: return 4
        case .i32: return 5
        case .bf16: return 6
        case .f16: return 7
        case .u16: return 8
        case .i16: return 9
        case .f8e4m3: return 10
        case .f8e5m2: return 11
        case .i8: return 12
        case .u8: return 13
        case .bool: return 14
        }
    }

    public static func < (a: DType, b: DType) -> Bool { a.writeOrder < b.writeOrder }
}
