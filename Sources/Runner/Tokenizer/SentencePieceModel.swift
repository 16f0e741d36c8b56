import CSentencePiece

/// A SentencePiece model loaded by Debian's libsentencepiece (through the CSentencePiece shim), so its
/// normalizer (e.g. T5's nmt_nfkc) and unigram search are the reference implementation's own.
/// The only user of the shim. Encoding is thread-safe (SentencePiece's `Encode` is const).
final class SentencePieceModel: @unchecked Sendable {
    let path: String
    let pieceCount: Int
    let unknownID: Int
    private let handle: OpaquePointer

    /// `addDummyPrefix: false` turns the normalizer's "prepend ▁" off, as transformers' non-legacy T5 does.
    init(path: String, addDummyPrefix: Bool = true) throws {
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = spm_load_with_options(path, addDummyPrefix ? 1 : 0, &message, message.count) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw RunnerError.invalidTokenizer(path: path, reason: "SentencePiece cannot load it (\(reason))")
        }
        self.handle = handle
        self.path = path
        pieceCount = Int(spm_piece_count(handle))
        unknownID = Int(spm_unk_id(handle))
    }

    deinit { spm_free(handle) }

    /// Python's `sp_model.encode(text, out_type=str)`: pieces, unknown stretches as their normalized text.
    func encodePieces(_ text: String) throws -> [String] {
        var utf8 = Array(text.utf8)
        let result = utf8.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { spm_encode_pieces(handle, $0.baseAddress, $0.count) }
        }
        guard let result else {
            throw RunnerError.invalidTokenizer(path: path, reason: "SentencePiece failed to encode \(text.debugDescription)")
        }
        defer { spm_pieces_free(result) }
        return (0..<Int(spm_pieces_count(result))).map { index in
            var length = 0
            guard let bytes = spm_pieces_piece(result, Int32(index), &length) else { return "" }
            return bytes.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
        }
    }

    /// The id of `piece`, or the unknown id when the vocabulary lacks it (`sp_model.piece_to_id`).
    func id(of piece: String) -> Int {
        var utf8 = Array(piece.utf8)
        return utf8.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { Int(spm_piece_to_id(handle, $0.baseAddress, $0.count)) }
        }
    }

    /// The piece string of `id` (`sp_model.IdToPiece`), nil when out of range.
    func piece(of id: Int) -> String? {
        guard id >= 0, id < pieceCount, let i = Int32(exactly: id) else { return nil }
        let length = Int(spm_id_to_piece(handle, i, nil, 0))
        guard length >= 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        _ = spm_id_to_piece(handle, i, &buffer, buffer.count)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
