import Foundation
import Testing
import Safetensors

/// The tensors of fixtures/safetensors-reference/make_reference.py, rebuilt with the same byte pattern.
enum ReferenceFiles {
    typealias Spec = (name: String, dtype: DType, shape: [Int])

    static let mixed: [Spec] = [
        ("zeta", .f32, [2, 3]), ("alpha", .f32, [4]), ("Beta", .f32, [1, 1, 2]), ("alpha.weight", .bf16, [3, 2]),
        ("alpha_weight", .f16, [5]), ("scalar", .f64, []), ("empty", .f32, [0, 3]), ("i64", .i64, [2]),
        ("u64", .u64, [3]), ("i32", .i32, [2]), ("u32", .u32, [1]), ("i16", .i16, [3]), ("u16", .u16, [2]),
        ("i8", .i8, [5]), ("u8", .u8, [3]), ("flag", .bool, [4]), ("e4m3", .f8e4m3, [4]),
        ("e5m2", .f8e5m2, [3]), ("na\u{EF}ve", .f32, [1]), ("\u{65E5}\u{672C}", .f16, [2]), ("z\u{1F600}", .u8, [1]),
        ("a", .u8, [1]), ("aa", .u8, [1]), ("a.b", .u8, [1]), ("A", .u8, [1]), ("empty_u8", .u8, [0]),
    ]
    static let escapes: [Spec] = [
        ("q\"uote", .f32, [1]), ("back\\slash", .f32, [1]), ("tab\t", .u8, [2]), ("nl\n", .u8, [1]),
        ("\u{01}ctrl", .u8, [1]), ("del\u{7F}", .u8, [1]), ("slash/ok", .u8, [1]), ("\u{2028}sep", .u8, [1]),
    ]
    static let files: [(file: String, specs: [Spec], metadata: [String: String]?)] = [
        ("mixed.safetensors", mixed, ["format": "pt"]),
        ("no_metadata.safetensors", Array(mixed[0..<3]), nil),
        ("empty_metadata_dict.safetensors", Array(mixed[0..<2]), [:]),
        ("escapes.safetensors", escapes, ["note": "a \"quoted\" \\ value\n\u{E9}\u{1F}"]),
        ("empty.safetensors", [], nil),
        ("only_metadata.safetensors", [], ["framework": "pt"]),
    ]

    /// Byte i of the index-th tensor: (index × 37 + i × 11 + 5) mod 251; BOOL tensors take it mod 2.
    static func pattern(index: Int, spec: Spec) -> [UInt8] {
        let count = spec.shape.reduce(1, *) * spec.dtype.size
        return (0..<count).map { i in
            let b = UInt8((index * 37 + i * 11 + 5) % 251)
            return spec.dtype == .bool ? b % 2 : b
        }
    }

    static func tensors(_ specs: [Spec]) -> [OutputTensor] {
        specs.enumerated().map { index, spec in
            .bytes(pattern(index: index, spec: spec), name: spec.name, dtype: spec.dtype, shape: spec.shape)
        }
    }
}

@Suite("SafetensorsWriter")
struct WriterTests {
    @Test("writes byte-identical files to safetensors' save_file", arguments: ReferenceFiles.files.map(\.file))
    func matchesReferenceFile(_ name: String) throws {
        guard let entry = ReferenceFiles.files.first(where: { $0.file == name }) else { return }
        try withTemporaryFolder { folder in
            let out = folder + "/" + name
            let report = try SafetensorsWriter(metadata: entry.metadata).write(ReferenceFiles.tensors(entry.specs), to: out)
            let expected = try readBytes(Fixtures.reference + "/" + name)
            #expect(try readBytes(out) == expected)
            #expect(report.fileSize == expected.count)
        }
    }

    @Test("rewriting each ea-tiny file from its own tensors reproduces it byte for byte")
    func rewritesFixtureFiles() throws {
        let files = Fixtures.allEaTinyFiles()
        #expect(!files.isEmpty)
        try withTemporaryFolder { folder in
            for (i, path) in files.enumerated() {
                let file = try SafetensorsFile(path: path)
                // With several metadata entries the reference's order is its HashMap's; only compare up to one.
                guard (file.declaredMetadata?.count ?? 0) <= 1 else { continue }
                let tensors = try file.keys.map { OutputTensor.copy(try file.tensor($0)) }
                let out = folder + "/\(i).safetensors"
                try SafetensorsWriter(metadata: file.declaredMetadata).write(tensors, to: out)
                #expect(try readBytes(out) == readBytes(path), "\(path)")
            }
        }
    }

    @Test("round trips every source: copies, conversions, floats, bytes, computed buffers and chunks")
    func roundTrips() throws {
        try withTemporaryFolder { folder in
            let values: [Float] = (0..<70).map { Float($0) * 0.37 - 9 }
            let source = folder + "/source.safetensors"
            try SafetensorsWriter().write([.floats(values, name: "w", dtype: .f32, shape: [7, 10])], to: source)
            let input = try SafetensorsFile(path: source)
            let w = try input.tensor("w")
            #expect(w.toFloat32() == values)
            var piece = [Float](repeating: 0, count: 13)
            piece.withUnsafeMutableBufferPointer { w.decode(elements: 20..<33, into: $0) }
            #expect(piece == Array(values[20..<33]))

            var ranges: [Range<Int>] = []
            let out = folder + "/out.safetensors"
            let report = try SafetensorsWriter(metadata: ["format": "pt"]).write([
                .copy(w, as: "copy"),
                .converted(w, to: .f16, as: "half"),
                .converted(w, to: .bf16, as: "brain"),
                .converted(w, to: .f8e4m3, as: "e4m3"),
                .floats(values, name: "floats", dtype: .f16, shape: [70]),
                .bytes([1, 2, 3], name: "raw", dtype: .u8, shape: [3]),
                .computed(name: "filled", dtype: .i32, shape: [2]) { buffer in
                    buffer.storeBytes(of: Int32(-5).littleEndian, toByteOffset: 0, as: Int32.self)
                    buffer.storeBytes(of: Int32(9).littleEndian, toByteOffset: 4, as: Int32.self)
                },
                .computedFloat32(name: "chunks", dtype: .bf16, shape: [7, 10]) { range, into in
                    ranges.append(range)
                    for (k, i) in range.enumerated() { into[k] = values[i] }
                },
            ], to: out)
            let result = try SafetensorsFile(path: out)
            #expect(result.keys == ["brain", "chunks", "copy", "e4m3", "filled", "floats", "half", "raw"])
            #expect(try result.tensor("copy").copyBytes() == w.copyBytes())
            #expect(try result.tensor("half").copyBytes() == values.flatMap { le(DTypeConversion.floatToHalf($0)) })
            #expect(try result.tensor("floats").copyBytes() == result.tensor("half").copyBytes())
            #expect(try result.tensor("brain").copyBytes() == values.flatMap { le(DTypeConversion.floatToBFloat16($0)) })
            #expect(try result.tensor("chunks").copyBytes() == result.tensor("brain").copyBytes())
            #expect(try result.tensor("e4m3").copyBytes() == values.map(DTypeConversion.floatToF8E4M3))
            #expect(try result.tensor("raw").toFloat32() == [1, 2, 3])
            #expect(try result.tensor("filled").toFloat32() == [-5, 9])
            #expect(try result.tensor("half").shape == [7, 10])
            #expect(ranges == [0..<70])
            #expect(result.declaredMetadata == ["format": "pt"])
            #expect(Set(report.conversions.keys) == ["half", "brain", "e4m3", "floats", "chunks"])
            #expect(report.lossyConversions.isEmpty)
        }
    }

    @Test("streams large tensors in whole-row chunks and reports lossy conversions")
    func chunksAndLosses() throws {
        try withTemporaryFolder { folder in
            let rows = 300, columns = 5000   // 1.5M elements: several chunks
            var ranges: [Range<Int>] = []
            let out = folder + "/big.safetensors"
            let report = try SafetensorsWriter().write([
                .computedFloat32(name: "big", dtype: .f16, shape: [rows, columns]) { range, into in
                    ranges.append(range)
                    for (k, i) in range.enumerated() { into[k] = i == 17 ? 1e6 : (i == 18 ? .nan : Float(i % 1000)) }
                },
            ], to: out)
            #expect(ranges.count > 1)
            #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == rows * columns)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect(ranges.dropLast().allSatisfy { $0.count % columns == 0 })
            #expect(report.conversions["big"] == ConversionStats(overflowed: 1, underflowed: 0, nan: 1))
            #expect(report.lossyConversions.keys.sorted() == ["big"])
            let back = try SafetensorsFile(path: out).tensor("big").toFloat32()
            #expect(back[16] == 16 && back[17] == .infinity && back[18].isNaN && back[rows * columns - 1] == Float((rows * columns - 1) % 1000))
        }
    }

    @Test("tensors of any size, from every source, reach the disk intact through the staging buffers and direct I/O")
    func largeUnalignedTensorsRoundTrip() throws {
        try withTemporaryFolder { folder in
            // Sizes around the staging buffer (8 MB + 4 KB) and the 4 KB block, none of them aligned.
            func pattern(_ count: Int, _ seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }
            let big = pattern(9_437_183, 1)
            let source = folder + "/source.safetensors"
            let floats: [Float] = (0..<3_000_001).map { Float($0 % 1000) * 0.25 }
            try SafetensorsWriter().write([.bytes(big, name: "big", dtype: .u8, shape: [big.count]),
                                           .floats(floats, name: "floats", dtype: .f32, shape: [floats.count])], to: source)
            let input = try SafetensorsFile(path: source)
            let view = try input.tensor("big")
            let small = pattern(4097, 2)
            let out = folder + "/out.safetensors"
            let report = try SafetensorsWriter(metadata: ["format": "pt"]).write([
                .copy(view, as: "a_copy"),
                .bytes(small, name: "b_small", dtype: .u8, shape: [small.count]),
                .floats(floats, name: "c_floats", dtype: .f32, shape: [floats.count]),
                .computedFloat32(name: "d_chunks", dtype: .f32, shape: [1_100_003, 3]) { range, into in
                    for (k, i) in range.enumerated() { into[k] = Float(i % 777) }
                },
                .converted(try input.tensor("floats"), to: .bf16, as: "e_brain"),
            ], to: out)
            let result = try SafetensorsFile(path: out)
            #expect(try readBytes(out).count == report.fileSize)
            #expect(try result.tensor("a_copy").copyBytes() == big)
            #expect(try result.tensor("b_small").copyBytes() == small)
            #expect(try result.tensor("c_floats").toFloat32() == floats)
            #expect(try result.tensor("d_chunks").toFloat32() == (0..<3_300_009).map { Float($0 % 777) })
            #expect(try result.tensor("e_brain").copyBytes() == floats.flatMap { le(DTypeConversion.floatToBFloat16($0)) })
            #expect(try folderContents(folder) == ["out.safetensors", "source.safetensors"])
        }
    }

    @Test("final metadata completes the header in place once the data is written")
    func finalMetadataRewritesHeader() throws {
        try withTemporaryFolder { folder in
            let out = folder + "/model.safetensors"
            var dataWritten = false
            let tensors: [OutputTensor] = [
                .floats([1, 2, 3], name: "w", dtype: .f32, shape: [3]),
                .computed(name: "z", dtype: .u8, shape: [1]) { buffer in
                    buffer[0] = 7
                    dataWritten = true
                },
            ]
            let writer = SafetensorsWriter(metadata: ["hash": String(repeating: "0", count: 8)],
                                           finalMetadata: { ["hash": dataWritten ? "0123abcd" : "too-early"] })
            try writer.write(tensors, to: out)
            let file = try SafetensorsFile(path: out)
            #expect(file.declaredMetadata == ["hash": "0123abcd"])
            #expect(try file.tensor("w").toFloat32() == [1, 2, 3])
            // Byte for byte what a writer given the final metadata up front writes.
            let direct = folder + "/direct.safetensors"
            try SafetensorsWriter(metadata: ["hash": "0123abcd"]).write(tensors, to: direct)
            #expect(try readBytes(out) == readBytes(direct))
        }
    }

    @Test("final metadata that would change the header's length is refused and leaves nothing")
    func finalMetadataOfAnotherLengthIsRefused() throws {
        try withTemporaryFolder { folder in
            let out = folder + "/model.safetensors"
            // Headers are padded to 8 bytes: a longer value changes the length past the padding.
            let writer = SafetensorsWriter(metadata: ["hash": "00"], finalMetadata: { ["hash": "0123456789abcdef"] })
            #expect(throws: SafetensorsError.self) {
                try writer.write([.floats([1], name: "w", dtype: .f32, shape: [1])], to: out)
            }
            let contents = try folderContents(folder)
            #expect(contents == [])
        }
    }

    @Test("a failed write leaves no file and no temporary file, and keeps the file it would replace")
    func failedWriteLeavesNothing() throws {
        struct Boom: Error {}
        try withTemporaryFolder { folder in
            let out = folder + "/model.safetensors"
            #expect(throws: Boom.self) {
                try SafetensorsWriter().write([
                    .bytes([1], name: "a", dtype: .u8, shape: [1]),
                    .computedFloat32(name: "b", dtype: .f16, shape: [4]) { _, _ in throw Boom() },
                ], to: out)
            }
            #expect(try folderContents(folder) == [])

            try SafetensorsWriter().write([.bytes([1], name: "a", dtype: .u8, shape: [1])], to: out)
            let before = try readBytes(out)
            #expect(throws: Boom.self) {
                try SafetensorsWriter().write([.computed(name: "a", dtype: .u8, shape: [1]) { _ in throw Boom() }], to: out)
            }
            #expect(try folderContents(folder) == ["model.safetensors"])
            #expect(try readBytes(out) == before)
        }
    }

    @Test("a conversion check can refuse a lossy tensor before anything is put in place")
    func conversionCheck() throws {
        struct Overflow: Error, Equatable { let tensor: String; let stats: ConversionStats }
        try withTemporaryFolder { folder in
            let out = folder + "/model.safetensors"
            var seen: [String] = []
            let writer = SafetensorsWriter(checkConversion: { name, dtype, stats in
                seen.append("\(name):\(dtype.rawValue)")
                if stats.overflowed > 0 { throw Overflow(tensor: name, stats: stats) }
            })
            #expect(throws: Overflow(tensor: "big", stats: ConversionStats(overflowed: 1))) {
                try writer.write([
                    .floats([1, 2], name: "fine", dtype: .f16, shape: [2]),
                    .floats([1e5], name: "big", dtype: .f16, shape: [1]),
                    .bytes([1], name: "raw", dtype: .u8, shape: [1]),
                ], to: out)
            }
            #expect(seen == ["big:F16"])   // file order: "big" before "fine"; raw bytes are not conversions
            let contents = try folderContents(folder)
            #expect(contents == [])
        }
    }

    @Test("a cancelled write stops with .cancelled and leaves nothing")
    func cancellation() throws {
        try withTemporaryFolder { folder in
            let out = folder + "/model.safetensors"
            var polls = 0
            let writer = SafetensorsWriter(isCancelled: { polls += 1; return polls > 2 })
            #expect(throws: SafetensorsError.cancelled(path: out)) {
                try writer.write((0..<10).map { .floats([1, 2], name: "t\($0)", dtype: .f32, shape: [2]) }, to: out)
            }
            let contents = try folderContents(folder)
            #expect(contents == [])
        }
    }

    @Test("rejects invalid tensor lists before writing anything")
    func rejectsInvalidInput() throws {
        try withTemporaryFolder { folder in
            let out = folder + "/x.safetensors"
            let writer = SafetensorsWriter()
            let cases: [[OutputTensor]] = [
                [.bytes([1], name: "a", dtype: .u8, shape: [1]), .bytes([2], name: "a", dtype: .u8, shape: [1])],
                [.bytes([1], name: "__metadata__", dtype: .u8, shape: [1])],
                [.bytes([1, 2], name: "a", dtype: .u8, shape: [1])],
                [.floats([1], name: "a", dtype: .f32, shape: [2])],
                [.floats([1], name: "a", dtype: .i32, shape: [1])],
                [.bytes([], name: "a", dtype: .u8, shape: [-1])],
                [.bytes([], name: "a", dtype: .u8, shape: [Int.max, 2])],
            ]
            for tensors in cases {
                #expect(throws: SafetensorsError.self) { try writer.write(tensors, to: out) }
            }
            #expect(throws: SafetensorsError.self) {
                try writer.write([.bytes([1], name: "a", dtype: .u8, shape: [1])], to: folder + "/missing/x.safetensors")
            }
            let contents = try folderContents(folder)
            #expect(contents == [])
        }
    }

    @Test("lays out headers like save_file: dtype order, then name bytes, padded to 8")
    func layout() throws {
        let layout = try FileLayout([
            .init(name: "b", dtype: .u8, shape: [3]), .init(name: "a", dtype: .bool, shape: [1]),
            .init(name: "c", dtype: .f64, shape: []), .init(name: "B", dtype: .u8, shape: [1]),
        ], metadata: nil, path: "x")
        #expect(layout.tensors.map(\.name) == ["c", "B", "b", "a"])
        #expect(layout.tensors.map(\.dataBegin) == [0, 8, 9, 12])
        #expect((layout.prefix.count - 8) % 8 == 0)
        let header = String(decoding: layout.prefix[8...], as: UTF8.self)
        #expect(header.hasPrefix("{\"c\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},\"B\":"))
        #expect(header.hasSuffix("}") || header.hasSuffix(" "))
        #expect(DType.allCases.sorted().map(\.rawValue)
                == ["U64", "I64", "F64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16", "F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL"])
    }
}
