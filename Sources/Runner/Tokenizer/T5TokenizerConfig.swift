import Foundation
import Safetensors

/// What a tokenizer folder (`spiece.model`, `tokenizer_config.json`, `special_tokens_map.json`,
/// `added_tokens.json`) tells transformers 4.37's `T5Tokenizer.from_pretrained`, reduced to what changes ids:
/// the legacy flag, the special tokens and the table of added tokens with their ids and strip flags.
struct T5TokenizerConfig {
    var legacy: Bool
    var extraIDs: Int
    var eosToken: AddedToken
    var unkToken: AddedToken
    var padToken: AddedToken
    /// Every special token attribute in transformers' order (bos, eos, unk, sep, pad, cls, mask, additional...).
    var specialTokens: [AddedToken]
    /// Added tokens by id, as the tokenizer ends up with them (saved table over T5's own extra-id table).
    var addedTokens: [(id: Int, token: AddedToken)]

    static let modelFileName = "spiece.model"

    /// Reads the folder's JSON files; `model` supplies piece ids for special tokens found in the vocabulary.
    static func load(directory: String, model: SentencePieceModel) throws -> T5TokenizerConfig {
        let folder = URL(fileURLWithPath: directory)
        func read(_ name: String) throws -> JSONValue? {
            let path = folder.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let data = SmallFile.contents(atPath: path) else {
                throw RunnerError.invalidTokenizer(path: path, reason: "cannot read the file")
            }
            do {
                return try JSONParser.parse(data)
            } catch {
                throw RunnerError.invalidTokenizer(path: path, reason: "not valid JSON (\(error))")
            }
        }
        let configPath = folder.appendingPathComponent("tokenizer_config.json").path
        let config = try read("tokenizer_config.json") ?? .object([])

        // Special token attributes, possibly overridden below by special_tokens_map.json.
        var special: [String: JSONValue] = [:]
        for key in specialTokenKeys { if let value = config[key], value != .null { special[key] = value } }

        // The saved table of added tokens: tokenizer_config.json's `added_tokens_decoder` (transformers >= 4.34),
        // else the older added_tokens.json (whose tokens never strip), with special_tokens_map.json.
        var saved: [(id: Int, token: AddedToken)] = []
        if let decoder = config["added_tokens_decoder"]?.objectValue {
            for (key, value) in decoder {
                guard let id = Int(key), let token = addedToken(value, special: false) else {
                    throw RunnerError.invalidTokenizer(path: configPath, reason: "added_tokens_decoder entry '\(key)' is not an id with a token")
                }
                saved.append((id, token))
            }
        } else {
            if let map = try read("special_tokens_map.json")?.objectValue {
                for (key, value) in map {
                    if key == "additional_special_tokens", case let .array(list) = value {
                        var merged = special[key]?.arrayValue ?? []
                        for item in list where !merged.contains(where: { tokenString($0) == tokenString(item) }) {
                            merged.append(item)
                        }
                        special[key] = .array(merged)
                    } else {
                        special[key] = value
                    }
                }
            }
            if let added = try read("added_tokens.json")?.objectValue {
                let specialStrings = Set(specialTokenKeys.flatMap { key -> [String] in
                    guard let value = special[key] else { return [] }
                    return (value.arrayValue ?? [value]).compactMap(tokenString)
                })
                for (content, value) in added {
                    guard let id = value.intValue.flatMap({ Int(exactly: $0) }) else {
                        throw RunnerError.invalidTokenizer(path: folder.appendingPathComponent("added_tokens.json").path,
                                                           reason: "the id of '\(content)' is not an integer")
                    }
                    saved.append((id, AddedToken(content: content, special: specialStrings.contains(content))))
                }
            }
        }

        // T5Tokenizer.__init__: defaults, the extra ids, and its own table of them (overridden by the saved one).
        let legacy: Bool
        switch config["legacy"] {
        case .bool(let value)?: legacy = value
        default: legacy = true   // transformers 4.37 warns and keeps the legacy behaviour
        }
        let extraIDs = config["extra_ids"]?.intValue.flatMap { Int(exactly: $0) } ?? 100
        func token(_ key: String, default content: String) -> AddedToken {
            special[key].flatMap { addedToken($0, special: true) } ?? AddedToken(content: content)
        }
        let eos = token("eos_token", default: "</s>")
        let unk = token("unk_token", default: "<unk>")
        let pad = token("pad_token", default: "<pad>")
        var additional = (special["additional_special_tokens"]?.arrayValue ?? []).compactMap { addedToken($0, special: true) }
        var extraTokenCount = additional.filter { $0.content.contains("<extra_id_") }.count
        if special["additional_special_tokens"] == nil {
            additional = (0..<extraIDs).map { AddedToken(content: "<extra_id_\($0)>") }
            extraTokenCount = extraIDs
        } else if extraTokenCount == 0 {
            additional += (0..<extraIDs).map { AddedToken(content: "<extra_id_\($0)>") }
        } else if extraIDs > 0, extraIDs != extraTokenCount {
            throw RunnerError.invalidTokenizer(path: configPath, reason: "extra_ids is \(extraIDs) but additional_special_tokens holds \(extraTokenCount) <extra_id_N> tokens")
        }
        var table: [(id: Int, token: AddedToken)] = (0..<extraTokenCount).map { i in
            (model.pieceCount - 1 + extraIDs - i,
             AddedToken(content: "<extra_id_\(i)>", lstrip: true, rstrip: true, singleWord: false, special: true))
        }
        for entry in saved {
            if let at = table.firstIndex(where: { $0.id == entry.id }) { table[at] = entry } else { table.append(entry) }
        }

        // PreTrainedTokenizer.__init__: special tokens not yet in the table are added, with their vocabulary id
        // when SentencePiece has the piece, else after the end of the vocabulary.
        var specialTokens: [AddedToken] = []
        var seen = Set<[Unicode.Scalar]>()
        for key in specialTokenKeys {
            let values: [AddedToken]
            switch key {
            case "eos_token": values = [eos]
            case "unk_token": values = [unk]
            case "pad_token": values = [pad]
            case "additional_special_tokens": values = additional
            default: values = special[key].flatMap { addedToken($0, special: true) }.map { [$0] } ?? []
            }
            for value in values where !seen.contains(value.scalars) {
                seen.insert(value.scalars)
                specialTokens.append(value)
            }
        }
        // Python compares strings by code points, so the vocabulary is keyed by them too.
        var vocabulary: [[Unicode.Scalar]: Int] = [:]
        let tableIDs = Set(table.map(\.id))
        for id in 0..<model.pieceCount where !tableIDs.contains(id) {
            if let piece = model.piece(of: id) { vocabulary[Array(piece.unicodeScalars)] = id }
        }
        for entry in table { vocabulary[entry.token.scalars] = entry.id }
        let nextID = vocabulary.count
        var added = 0
        for token in specialTokens where !table.contains(where: { $0.token.scalars == token.scalars }) {
            let id: Int
            if let existing = vocabulary[token.scalars] {
                id = existing
            } else {
                id = nextID + added
                added += 1
            }
            table.append((id, token))
        }
        return T5TokenizerConfig(legacy: legacy, extraIDs: extraIDs, eosToken: eos, unkToken: unk, padToken: pad,
                                 specialTokens: specialTokens, addedTokens: table)
    }

    /// transformers' SPECIAL_TOKENS_ATTRIBUTES, in its order.
    static let specialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                                   "mask_token", "additional_special_tokens"]

    /// A token given as a string or as a serialized AddedToken (`{"content": ..., "lstrip": ...}`).
    private static func addedToken(_ value: JSONValue, special: Bool) -> AddedToken? {
        if let content = value.stringValue { return AddedToken(content: content, special: special) }
        guard let content = value["content"]?.stringValue else { return nil }
        func flag(_ name: String, _ fallback: Bool) -> Bool {
            if case .bool(let b)? = value[name] { return b }
            return fallback
        }
        return AddedToken(content: content, lstrip: flag("lstrip", false), rstrip: flag("rstrip", false),
                          singleWord: flag("single_word", false), special: flag("special", special))
    }

    private static func tokenString(_ value: JSONValue) -> String? {
        value.stringValue ?? value["content"]?.stringValue
    }
}
