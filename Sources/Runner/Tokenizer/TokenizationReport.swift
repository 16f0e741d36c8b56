import Foundation

/// What `ea-weights tokenize` shows about one prompt: the ids and mask exactly as the pipeline feeds the text
/// encoder, the pieces behind them, and whether the prompt was cut (users hit the 120-token limit unknowingly).
/// Encodes to the `--json` object `{"attention_mask", "input_ids", "pieces", "truncated"}`.
public struct TokenizationReport: Encodable, Sendable {
    public var inputIDs: [Int32]
    public var attentionMask: [Int32]
    public var pieces: [String]
    public var truncated: Bool
    /// The prompt after the pipeline's `lower().strip()`.
    public var preprocessedPrompt: String
    public var maxLength: Int
    public var tokenCount: Int
    public var dropped: [String]
    /// Positions whose text the vocabulary lacks (they become `<unk>`).
    public var unknownPositions: [Int]

    enum CodingKeys: String, CodingKey {
        case inputIDs = "input_ids"
        case attentionMask = "attention_mask"
        case pieces
        case truncated
    }

    /// Tokenizes `prompt` with the tokenizer folder `directory` the way the pipeline does.
    public static func make(prompt: String, tokenizerDirectory directory: String,
                            maxLength: Int = T5Tokenizer.pipelineMaxLength) throws -> TokenizationReport {
        let tokenizer = try T5Tokenizer(directory: directory)
        let encoding = try tokenizer.encode(prompt, maxLength: maxLength)
        let unknown = encoding.pieces.indices.filter {
            Int(encoding.ids[$0]) == tokenizer.unknownID && encoding.pieces[$0] != tokenizer.unknownToken
        }
        return TokenizationReport(inputIDs: encoding.ids, attentionMask: encoding.mask, pieces: encoding.pieces,
                                  truncated: encoding.truncated, preprocessedPrompt: T5Tokenizer.preprocess(prompt),
                                  maxLength: maxLength, tokenCount: encoding.tokenCount, dropped: encoding.dropped,
                                  unknownPositions: unknown)
    }

    /// A table of position, id and piece, then the verdict on truncation.
    public func text() -> String {
        var out = "prompt: \(preprocessedPrompt.debugDescription) (after lower().strip())\n"
        let used = pieces.count
        out += "tokens: \(used) of \(maxLength) (\(used - 1) + </s>), \(maxLength - used) padding\n\n"
        let width = max(2, String(used).count)
        let idWidth = max(2, inputIDs.prefix(used).map { String($0).count }.max() ?? 1)
        out += "\(pad("#", width))  \(pad("id", idWidth))  piece\n"
        let unknown = Set(unknownPositions)
        for (i, piece) in pieces.enumerated() {
            let note = unknown.contains(i) ? "   (not in the vocabulary: <unk>)" : ""
            out += "\(pad(String(i), width))  \(pad(String(inputIDs[i]), idWidth))  \(piece)\(note)\n"
        }
        out += "\n"
        if truncated {
            out += "TRUNCATED: the prompt needs \(tokenCount) tokens with </s>; the model sees only the first \(maxLength - 1) and </s>.\n"
            // The pieces read back as text ("▁" is SentencePiece's space), shortened for the terminal.
            let text = String(dropped.joined().map { $0 == "\u{2581}" ? " " : $0 })
                .trimmingCharacters(in: .whitespaces)
            let shown = text.count > 240 ? String(text.prefix(240)) + "…" : text
            out += "dropped (\(dropped.count) tokens): \(shown.debugDescription)\n"
        } else {
            out += "not truncated (\(maxLength - used) tokens to spare)\n"
        }
        if !unknownPositions.isEmpty {
            out += "\(unknownPositions.count) piece(s) are not in the vocabulary and reach the model as <unk>.\n"
        }
        return out
    }

    private func pad(_ s: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - s.count)) + s
    }
}
