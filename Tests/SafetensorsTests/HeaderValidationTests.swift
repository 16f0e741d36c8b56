import Foundation
import Testing
@testable import Safetensors

/// One hand-made file and the rule it must be rejected for (the `SafetensorsError` case name).
struct MalformedFile: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let expected: String
    var testDescription: String { name }

    init(_ name: String, _ bytes: [UInt8], _ expected: String) {
        self.name = name
        self.bytes = bytes
        self.expected = expected
    }

    /// A header of one tensor `t` with the given JSON fields, and `dataBytes` zero bytes of data.
    init(_ name: String, entry: String, dataBytes: Int, _ expected: String) {
        self.init(name, safetensorsBytes("{\"t\":\(entry)}", data: [UInt8](repeating: 0, count: dataBytes)), expected)
    }

    static let f32 = "\"dtype\":\"F32\""
    static let all: [MalformedFile] = [
        // Length prefix
        .init("empty file", [], "headerTooSmall"),
        .init("seven bytes", [8, 0, 0, 0, 0, 0, 0], "headerTooSmall"),
        .init("header one byte over 100,000,000", safetensorsBytes("{}", declaredLength: 100_000_001), "headerTooLarge"),
        .init("header length u64 max", safetensorsBytes("{}", declaredLength: .max), "headerTooLarge"),
        .init("header length with the high bit set", safetensorsBytes("{}", declaredLength: 1 << 63), "headerTooLarge"),
        .init("header past the end of a small file", safetensorsBytes("{}", declaredLength: 99_999_999), "invalidHeaderLength"),
        .init("header one byte past the end", safetensorsBytes("{}", declaredLength: 3), "invalidHeaderLength"),
        .init("length only", safetensorsBytes("", declaredLength: 60), "invalidHeaderLength"),
        // Text
        .init("invalid UTF-8 byte", safetensorsBytes([0xFF]), "headerNotUTF8"),
        .init("overlong UTF-8", safetensorsBytes([UInt8]("{\"".utf8) + [0xC0, 0xAF] + [UInt8]("\":1}".utf8)), "headerNotUTF8"),
        .init("UTF-8 encoded surrogate", safetensorsBytes([UInt8]("{\"".utf8) + [0xED, 0xA0, 0x80] + [UInt8]("\":1}".utf8)), "headerNotUTF8"),
        .init("truncated UTF-8 sequence", safetensorsBytes([UInt8]("{}".utf8) + [0xE6, 0x97]), "headerNotUTF8"),
        // JSON
        .init("empty header", safetensorsBytes(""), "invalidJSON"),
        .init("unterminated object", safetensorsBytes("{"), "invalidJSON"),
        .init("not JSON", safetensorsBytes("safetensors"), "invalidJSON"),
        .init("array instead of object", safetensorsBytes("[]"), "invalidJSON"),
        .init("string instead of object", safetensorsBytes("\"x\""), "invalidJSON"),
        .init("null instead of object", safetensorsBytes("null"), "invalidJSON"),
        .init("trailing garbage", safetensorsBytes("{} x"), "invalidJSON"),
        .init("two objects", safetensorsBytes("{}{}"), "invalidJSON"),
        .init("trailing NUL padding", safetensorsBytes("{}\0\0"), "invalidJSON"),
        .init("form feed is not JSON whitespace", safetensorsBytes("{}\u{0C}"), "invalidJSON"),
        .init("byte order mark", safetensorsBytes([0xEF, 0xBB, 0xBF] + [UInt8]("{}".utf8)), "invalidJSON"),
        .init("trailing comma", safetensorsBytes("{\"__metadata__\":{\"a\":\"b\",}}"), "invalidJSON"),
        .init("single quotes", safetensorsBytes("{'a':1}"), "invalidJSON"),
        .init("control character in a string", safetensorsBytes("{\"__metadata__\":{\"a\":\"x\ty\"}}"), "invalidJSON"),
        .init("invalid escape", safetensorsBytes("{\"__metadata__\":{\"a\":\"\\x\"}}"), "invalidJSON"),
        .init("lone surrogate escape", safetensorsBytes("{\"__metadata__\":{\"a\":\"\\ud800\"}}"), "invalidJSON"),
        .init("number out of float range", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[0,4],\"x\":1e400}", dataBytes: 4, "invalidJSON"),
        .init("leading zero", entry: "{\(f32),\"shape\":[01],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidJSON"),
        .init("nesting 128 deep", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[0,4],\"x\":"
              + String(repeating: "[", count: 126) + String(repeating: "]", count: 126) + "}", dataBytes: 4, "invalidJSON"),
        // Duplicates (the reference keeps the last tensor or metadata key; we reject every repeated key)
        .init("duplicate tensor", safetensorsBytes("{\"t\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]},\"t\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]}}",
                                                   data: [0, 0, 0, 0]), "duplicateKey"),
        .init("duplicate metadata key", safetensorsBytes("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}"), "duplicateKey"),
        .init("duplicate __metadata__", safetensorsBytes("{\"__metadata__\":{},\"__metadata__\":{}}"), "duplicateKey"),
        .init("duplicate field in an entry", entry: "{\(f32),\(f32),\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 4, "duplicateKey"),
        .init("duplicate through an escape", safetensorsBytes("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
                                                            data: [0, 0, 0, 0]), "duplicateKey"),
        // __metadata__
        .init("metadata is an array", safetensorsBytes("{\"__metadata__\":[]}"), "invalidMetadata"),
        .init("metadata is a string", safetensorsBytes("{\"__metadata__\":\"pt\"}"), "invalidMetadata"),
        .init("metadata value is a number", safetensorsBytes("{\"__metadata__\":{\"total\":1}}"), "invalidMetadata"),
        .init("metadata value is null", safetensorsBytes("{\"__metadata__\":{\"a\":null}}"), "invalidMetadata"),
        .init("metadata value is an object", safetensorsBytes("{\"__metadata__\":{\"a\":{}}}"), "invalidMetadata"),
        // Tensor entries
        .init("unknown dtype", entry: "{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,1]}", dataBytes: 1, "unknownDType"),
        .init("dtype in lower case", entry: "{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 4, "unknownDType"),
        .init("complex dtype of newer safetensors", entry: "{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}", dataBytes: 8, "unknownDType"),
        .init("unknown dtype as an enum object", entry: "{\"dtype\":{\"X\":null},\"shape\":[1],\"data_offsets\":[0,1]}", dataBytes: 1, "unknownDType"),
        .init("dtype is a number", entry: "{\"dtype\":11,\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("dtype object with a value", entry: "{\"dtype\":{\"F32\":1},\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("missing dtype", entry: "{\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("missing shape", entry: "{\(f32),\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("missing data_offsets", entry: "{\(f32),\"shape\":[1]}", dataBytes: 4, "invalidTensorEntry"),
        .init("entry is null", entry: "null", dataBytes: 0, "invalidTensorEntry"),
        .init("entry is a number", entry: "3", dataBytes: 0, "invalidTensorEntry"),
        .init("entry array too short", entry: "[\"F32\",[1]]", dataBytes: 4, "invalidTensorEntry"),
        .init("entry array too long", entry: "[\"F32\",[1],[0,4],1]", dataBytes: 4, "invalidTensorEntry"),
        .init("negative dimension", entry: "{\(f32),\"shape\":[-1],\"data_offsets\":[0,0]}", dataBytes: 0, "invalidTensorEntry"),
        .init("fractional dimension", entry: "{\(f32),\"shape\":[1.5],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("dimension written as a float", entry: "{\(f32),\"shape\":[1.0],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("dimension with an exponent", entry: "{\(f32),\"shape\":[1e0],\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("dimension -0", entry: "{\(f32),\"shape\":[-0],\"data_offsets\":[0,0]}", dataBytes: 0, "invalidTensorEntry"),
        .init("dimension beyond u64", entry: "{\(f32),\"shape\":[18446744073709551616,0],\"data_offsets\":[0,0]}", dataBytes: 0, "invalidTensorEntry"),
        .init("shape is not an array", entry: "{\(f32),\"shape\":4,\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("shape is null", entry: "{\(f32),\"shape\":null,\"data_offsets\":[0,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("one data offset", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("three data offsets", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[0,4,4]}", dataBytes: 4, "invalidTensorEntry"),
        .init("negative data offset", entry: "{\(f32),\"shape\":[0],\"data_offsets\":[-4,0]}", dataBytes: 0, "invalidTensorEntry"),
        .init("data_offsets as an object", entry: "{\(f32),\"shape\":[1],\"data_offsets\":{\"0\":0,\"1\":4}}", dataBytes: 4, "invalidTensorEntry"),
        // Sizes and offsets
        .init("begin after end", entry: "{\(f32),\"shape\":[0],\"data_offsets\":[4,0]}", dataBytes: 4, "invalidOffsets"),
        .init("size mismatch", entry: "{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,4]}", dataBytes: 4, "sizeMismatch"),
        .init("overflow of the element count", entry: "{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}", dataBytes: 16, "shapeOverflow"),
        .init("overflow of the byte count", entry: "{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}", dataBytes: 16, "shapeOverflow"),
        .init("overflow before a zero dimension", entry: "{\(f32),\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}", dataBytes: 0, "shapeOverflow"),
        .init("u64 max elements of one byte", entry: "{\"dtype\":\"U8\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}", dataBytes: 4, "sizeMismatch"),
        .init("huge declared tensor", entry: "{\(f32),\"shape\":[1073741824,1073741824],\"data_offsets\":[0,4611686018427387904]}",
              dataBytes: 8, "incompleteBuffer"),
        .init("offset at u64 max", entry: "{\(f32),\"shape\":[0],\"data_offsets\":[18446744073709551615,18446744073709551615]}", dataBytes: 0, "invalidOffsets"),
        .init("hole between tensors", safetensorsBytes(
            "{\"a\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\(f32),\"shape\":[1],\"data_offsets\":[8,12]}}",
            data: [UInt8](repeating: 0, count: 12)), "invalidOffsets"),
        .init("overlapping tensors", safetensorsBytes(
            "{\"a\":{\(f32),\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\(f32),\"shape\":[2],\"data_offsets\":[4,12]}}",
            data: [UInt8](repeating: 0, count: 12)), "invalidOffsets"),
        .init("same range twice", safetensorsBytes(
            "{\"a\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]}}",
            data: [UInt8](repeating: 0, count: 4)), "invalidOffsets"),
        .init("not starting at 0", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[4,8]}", dataBytes: 8, "invalidOffsets"),
        .init("trailing bytes after the data", entry: "{\(f32),\"shape\":[1],\"data_offsets\":[0,4]}", dataBytes: 5, "incompleteBuffer"),
        .init("polyglot tail", safetensorsBytes("{\"t\":{\(f32),\"shape\":[1],\"data_offsets\":[0,4]}}",
                                                data: [0, 0, 0, 0] + Array("extra_bogus_data".utf8)), "incompleteBuffer"),
        .init("truncated data", entry: "{\(f32),\"shape\":[4],\"data_offsets\":[0,16]}", dataBytes: 14, "incompleteBuffer"),
        .init("data but no tensors", safetensorsBytes("{}", data: [0]), "incompleteBuffer"),
        .init("zero-element tensor past the data", entry: "{\(f32),\"shape\":[0],\"data_offsets\":[8,8]}", dataBytes: 0, "invalidOffsets"),
        // Accepted by the reference but not representable here (documented deviation).
        .init("dimension above Int.max in an empty tensor", entry: "{\(f32),\"shape\":[9223372036854775808,0],\"data_offsets\":[0,0]}",
              dataBytes: 0, "invalidTensorEntry"),
    ]
}

@Suite("Header validation")
struct HeaderValidationTests {
    @Test("rejects each malformed file with the error for the rule it breaks", arguments: MalformedFile.all)
    func rejectsMalformedFile(_ file: MalformedFile) {
        let error = headerError(file.bytes)
        #expect(error?.kind == file.expected, "\(file.name): \(error.map { "\($0)" } ?? "accepted")")
        // Every message names the file.
        if let error, error.kind != "unsupportedEncoding" { #expect(error.description.contains("test.safetensors")) }
    }

    @Test("accepts what the reference accepts", arguments: [
        ("empty header padded", safetensorsBytes("{}      ")),
        ("whitespace around the object", safetensorsBytes(" \t\n{}\r\n ")),
        ("metadata only", safetensorsBytes("{\"__metadata__\":{\"format\":\"pt\"}}")),
        ("null metadata", safetensorsBytes("{\"__metadata__\":null}")),
        ("empty metadata", safetensorsBytes("{\"__metadata__\":{}}")),
        ("scalar", safetensorsBytes("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", data: [UInt8](repeating: 0, count: 8))),
        ("zero-element tensors", safetensorsBytes(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[0,0]}}")),
        ("extra fields ignored", safetensorsBytes(
            "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"note\":[{\"x\":null}]}}", data: [7])),
        ("entry as an array", safetensorsBytes("{\"t\":[\"U8\",[2],[0,2]]}", data: [1, 2])),
        ("dtype as an enum object", safetensorsBytes("{\"t\":{\"dtype\":{\"U8\":null},\"shape\":[1],\"data_offsets\":[0,1]}}", data: [1])),
        ("entries out of offset order", safetensorsBytes(
            "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", data: [1, 2])),
        ("escaped names", safetensorsBytes("{\"\\u0061\\n\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", data: [1])),
        ("nesting 127 deep", safetensorsBytes("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":"
            + String(repeating: "[", count: 125) + String(repeating: "]", count: 125) + "}}", data: [1])),
        ("tiny float in an ignored field", safetensorsBytes("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1e-400}}", data: [1])),
    ])
    func acceptsValidFile(_ name: String, _ bytes: [UInt8]) {
        #expect(headerError(bytes) == nil, "\(name)")
    }

    @Test("reads names, dtypes, shapes and offsets as the header declares them")
    func readsEntries() throws {
        let bytes = safetensorsBytes(
            "{\"__metadata__\":{\"format\":\"pt\",\"a\":\"b\"},\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[4,16]},"
            + "\"\\u00e9\":[\"I32\",[1],[0,4]]}", data: [UInt8](repeating: 1, count: 16))
        let header = try parseHeader(bytes)
        #expect(header.tensors.map(\.name) == ["é", "w"])
        #expect(header.tensors[1] == TensorInfo(name: "w", dtype: .bf16, shape: [2, 3], dataBegin: 4, dataEnd: 16))
        #expect(header.metadata == ["format": "pt", "a": "b"])
        #expect(header.metadataOrder == ["format", "a"])
        #expect(header.declaredMetadata == ["format": "pt", "a": "b"])
        #expect(header.dataStart == bytes.count - 16)
        #expect(try parseHeader(safetensorsBytes("{\"__metadata__\":null}")).declaredMetadata == nil)
        #expect(try parseHeader(safetensorsBytes("{}")).declaredMetadata == nil)
    }

    @Test("errors name the tensor and the rule in one sentence")
    func errorMessages() {
        let overlap = headerError(safetensorsBytes(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
            data: [0, 0, 0]))
        #expect(overlap?.description == "test.safetensors: tensor 'b': invalid data_offsets: overlaps the previous tensor (begins at 1, previous ends at 2)")
        let mismatch = headerError(safetensorsBytes("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]))
        #expect(mismatch?.description == "test.safetensors: tensor 'w': data_offsets span 4 bytes but shape and dtype need 6")
        let unknown = headerError(safetensorsBytes("{\"w\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[0,1]}}", data: [0]))
        #expect(unknown?.description.hasPrefix("test.safetensors: tensor 'w' has dtype 'F8_E8M0', which is not one of") == true)
    }

    @Test("opening a file maps it and validates it; problems with the file itself are errors too")
    func opensFiles() throws {
        try withTemporaryFolder { folder in
            let good = folder + "/good.safetensors"
            try writeBytes(safetensorsBytes("{\"t\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", data: [1, 2, 3]), to: good)
            let file = try SafetensorsFile(path: good)
            #expect(file.keys == ["t"])
            #expect(try file.tensor("t").copyBytes() == [1, 2, 3])
            #expect(throws: SafetensorsError.tensorNotFound(path: good, tensor: "u")) { try file.tensor("u") }

            let empty = folder + "/empty.safetensors"
            try writeBytes([], to: empty)
            #expect(throws: SafetensorsError.headerTooSmall(path: empty, fileSize: 0)) { try SafetensorsFile(path: empty) }
            #expect((try? SafetensorsFile(path: folder + "/missing.safetensors")) == nil)
            #expect(throws: SafetensorsError.cannotOpen(path: folder, reason: "not a regular file")) { try SafetensorsFile(path: folder) }
        }
    }
}

@Suite("JSON parser")
struct JSONParserTests {
    @Test("keeps integers exact, like serde_json: i64, then u64, then float")
    func numbers() throws {
        #expect(try JSONParser.parse(Array("-9223372036854775808".utf8)) == .integer(.min))
        #expect(try JSONParser.parse(Array("18446744073709551615".utf8)) == .unsignedInteger(.max))
        #expect(try JSONParser.parse(Array("18446744073709551616".utf8)) == .number(18446744073709551616))
        #expect(try JSONParser.parse(Array("-0".utf8)) == .number(-0.0))
        #expect(try JSONParser.parse(Array("2.5e3".utf8)) == .number(2500))
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("1e309".utf8)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("1.".utf8)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("+1".utf8)) }
    }

    @Test("decodes escapes and surrogate pairs and keeps member order")
    func stringsAndOrder() throws {
        let value = try JSONParser.parse(Array("{\"z\":\"\\ud83d\\ude00\\u00e9\\/\",\"a\":[true,false,null]}".utf8))
        #expect(value == .object([("z", .string("😀é/")), ("a", .array([.bool(true), .bool(false), .null]))]))
        #expect(value.compactText == "{\"z\":\"😀é/\",\"a\":[true,false,null]}")
    }

    @Test("allows 127 levels of nesting and rejects 128, as serde_json")
    func depthLimit() throws {
        let ok = String(repeating: "[", count: 127) + String(repeating: "]", count: 127)
        let deep = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect((try? JSONParser.parse(Array(ok.utf8))) != nil)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
        // Far deeper input fails the same way instead of exhausting the stack.
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(hostile.utf8)) }
    }
}
