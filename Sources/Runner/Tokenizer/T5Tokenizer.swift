import Foundation

/// T5's tokenizer as EasyAnimate's pipeline (a copy of diffusers 0.27's PixArtAlphaPipeline) calls it:
/// `text.lower().strip()` (caption cleaning off), then transformers 4.37.2's slow `T5Tokenizer` with
/// `padding="max_length", max_length=120, truncation=True, add_special_tokens=True`.
///
/// This matches transformers' behaviour in the details that change ids: added tokens (`</s>`, `<extra_id_N>`...)
/// typed in the prompt are cut out first and keep their ids; each stretch between them goes through SentencePiece
/// (Debian's libsentencepiece, so NFKC and the unigram search are the reference's own); truncation removes tokens
/// from the end to leave room for `</s>`, which is appended unless the sequence already ends with it; padding
/// uses the pad id with mask 0. Both `legacy` modes are reproduced (T5's folders use the legacy one).
public final class T5Tokenizer: Sendable {
    /// One prompt as the text encoder receives it.
    public struct Encoding: Sendable, Equatable {
        /// `input_ids`, `maxLength` long: the tokens, `</s>`, then padding.
        public var ids: [Int32]
        /// `attention_mask`: 1 for tokens (including `</s>`), 0 for padding.
        public var mask: [Int32]
        /// The token strings of the unpadded ids, one per id (unknown stretches show their text).
        public var pieces: [String]
        /// Whether tokens of the prompt were cut off to fit `maxLength`.
        public var truncated: Bool
        /// The token strings cut off (empty unless truncated).
        public var dropped: [String]
        /// How many ids the prompt needs untruncated, `</s>` included.
        public var tokenCount: Int
    }

    /// The sequence length EasyAnimate v1's pipeline pads and truncates to.
    public static let pipelineMaxLength = 120

    public let directory: String
    public let legacy: Bool
    public let eosID: Int
    public let padID: Int
    /// The id SentencePiece gives text it has no piece for (`<unk>`).
    public let unknownID: Int
    private let model: SentencePieceModel
    private let splitter: AddedTokenSplitter
    private let addedIDs: [[Unicode.Scalar]: Int]
    private let specialTokens: Set<[Unicode.Scalar]>
    /// The unknown token's text (`<unk>`).
    public var unknownToken: String { unkToken }
    private let unkToken: String
    private let unkTokenLength: Int

    /// Loads `spiece.model` and the JSON files of a tokenizer folder (such as `tokenizer/` of a diffusers model).
    public init(directory: String) throws {
        let modelPath = URL(fileURLWithPath: directory).appendingPathComponent(T5TokenizerConfig.modelFileName).path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunnerError.invalidTokenizer(path: directory, reason: "no such folder; pass the tokenizer folder (with spiece.model)")
        }
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw RunnerError.invalidTokenizer(path: directory, reason: "no \(T5TokenizerConfig.modelFileName) in this folder; pass a T5 tokenizer folder")
        }
        let vocabulary = try SentencePieceModel(path: modelPath)
        let config = try T5TokenizerConfig.load(directory: directory, model: vocabulary)
        // The non-legacy tokenizer runs SentencePiece with the dummy "▁" prefix switched off.
        model = config.legacy ? vocabulary : try SentencePieceModel(path: modelPath, addDummyPrefix: false)
        self.directory = directory
        legacy = config.legacy
        splitter = AddedTokenSplitter(config.addedTokens.map(\.token))
        var ids: [[Unicode.Scalar]: Int] = [:]
        for entry in config.addedTokens { ids[entry.token.scalars] = entry.id }
        addedIDs = ids
        specialTokens = Set(config.specialTokens.map(\.scalars))
        unkToken = config.unkToken.content
        unkTokenLength = try model.encodePieces(config.unkToken.content).count
        let lookup = { (token: AddedToken) in ids[token.scalars] ?? vocabulary.id(of: token.content) }
        eosID = lookup(config.eosToken)
        padID = lookup(config.padToken)
        unknownID = lookup(config.unkToken)
    }

    /// The pipeline's preprocessing: Python's `text.lower().strip()`.
    public static func preprocess(_ prompt: String) -> String {
        PythonText.strip(PythonText.lower(prompt))
    }

    /// The pipeline's call for one prompt: preprocessing (unless `preprocess` is false), tokens, truncation to
    /// `maxLength - 1` when needed, `</s>`, padding to `maxLength`.
    public func encode(_ prompt: String, maxLength: Int = T5Tokenizer.pipelineMaxLength,
                       preprocess: Bool = true) throws -> Encoding {
        guard maxLength >= 2 else {
            throw RunnerError.invalidInput("max length \(maxLength) leaves no room for a token and </s>; use at least 2")
        }
        var pieces = try tokenize(preprocess ? T5Tokenizer.preprocess(prompt) : prompt)
        var ids = pieces.map(id(of:))
        let endsWithEOS = ids.last == eosID
        let tokenCount = ids.count + (endsWithEOS ? 0 : 1)
        let untruncated = endsWithEOS ? ids : ids + [eosID]
        // prepare_for_model: one place is always reserved for </s>, then `_add_eos_if_not_present`.
        var dropped: [String] = []
        if ids.count + 1 > maxLength {
            ids.removeLast(ids.count + 1 - maxLength)
            dropped = Array(pieces[ids.count...])
            pieces.removeLast(dropped.count)
        }
        if ids.last != eosID {
            ids.append(eosID)
            pieces.append(model.piece(of: eosID) ?? "</s>")
        }
        // A typed </s> exactly at the limit is cut and appended again: the model sees every id of the prompt.
        let truncated = ids != untruncated
        if !truncated { dropped = [] }
        let padding = maxLength - ids.count
        return Encoding(ids: ids.map { Int32(truncatingIfNeeded: $0) } + Array(repeating: Int32(truncatingIfNeeded: padID), count: padding),
                        mask: Array(repeating: 1, count: ids.count) + Array(repeating: 0, count: padding),
                        pieces: pieces, truncated: truncated, dropped: dropped, tokenCount: tokenCount)
    }

    /// transformers' `tokenizer.tokenize(text)`: added tokens kept whole, the text between them as SentencePiece
    /// pieces. No preprocessing, no `</s>`.
    public func tokenize(_ text: String) throws -> [String] {
        if legacy || text.isEmpty {
            return try tokenizeSegments(text)
        }
        // Non-legacy: one "▁" in front of the whole text instead of one per segment, dropped before a special token.
        let replaced = String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 }))
        var tokens = try tokenizeSegments("\u{2581}" + replaced)
        if tokens.count > 1, tokens[0] == "\u{2581}", specialTokens.contains(Array(tokens[1].unicodeScalars)) {
            tokens.removeFirst()
        }
        return tokens
    }

    /// The id of a token string: an added token's id, else SentencePiece's (the unknown id when it has none).
    public func id(of token: String) -> Int {
        addedIDs[Array(token.unicodeScalars)] ?? model.id(of: token)
    }

    private func tokenizeSegments(_ text: String) throws -> [String] {
        var tokens: [String] = []
        for segment in splitter.split(text) {
            switch segment {
            case let .token(token):
                tokens.append(token.content)
            case let .text(scalars):
                tokens += try sentencePieces(String(String.UnicodeScalarView(scalars)))
            }
        }
        return tokens
    }

    /// `T5Tokenizer._tokenize`.
    private func sentencePieces(_ text: String) throws -> [String] {
        let first = text.unicodeScalars.first
        if legacy || !(first == "\u{2581}" || first == " ") {
            return try model.encodePieces(text)
        }
        // Without the dummy prefix SentencePiece drops a leading "▁"; encoding behind the unknown token keeps it.
        let tokens = try model.encodePieces(unkToken + text)
        return tokens.count >= unkTokenLength ? Array(tokens[unkTokenLength...]) : tokens
    }
}
