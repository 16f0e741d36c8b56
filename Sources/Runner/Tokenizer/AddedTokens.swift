/// A token the tokenizer matches in the text before SentencePiece sees it (`<pad>`, `</s>`, `<unk>`,
/// `<extra_id_N>`...), with transformers' `AddedToken` flags that decide how it eats neighbouring spaces.
struct AddedToken: Sendable, Equatable {
    var content: String
    var lstrip = false
    var rstrip = false
    var singleWord = false
    var special = true

    var scalars: [Unicode.Scalar] { Array(content.unicodeScalars) }
}

/// One piece of a prompt after the added tokens were cut out of it.
enum TextSegment: Equatable {
    case text([Unicode.Scalar])
    case token(AddedToken)
}

/// Splits text on added tokens exactly as transformers 4.37's slow tokenizers do (`PreTrainedTokenizer.tokenize`):
/// its `Trie.split` (leftmost match, extended to the longest token by lookahead), then the `lstrip`/`rstrip`/
/// `single_word` rules applied to the neighbouring text. Works on code points, as Python strings do (Swift's
/// `String ==` would treat canonically equivalent spellings as equal; Python does not).
struct AddedTokenSplitter: Sendable {
    private var children: [[Unicode.Scalar: Int]] = [[:]]
    private var terminal: [Bool] = [false]
    private var tokens: [[Unicode.Scalar]: AddedToken] = [:]

    init(_ addedTokens: [AddedToken]) {
        for token in addedTokens { insert(token) }
    }

    func token(matching scalars: [Unicode.Scalar]) -> AddedToken? { tokens[scalars] }

    private mutating func insert(_ token: AddedToken) {
        let word = token.scalars
        guard !word.isEmpty else { return }
        tokens[word] = token
        var node = 0
        for c in word {
            if let next = children[node][c] {
                node = next
            } else {
                children.append([:])
                terminal.append(false)
                children[node][c] = children.count - 1
                node = children.count - 1
            }
        }
        terminal[node] = true
    }

    /// The segments of `text` in order; empty text segments (fully stripped) are dropped.
    func split(_ text: String) -> [TextSegment] {
        var parts = trieSplit(Array(text.unicodeScalars))
        // The strip rules, in the same left-to-right order as transformers (later parts see earlier edits).
        for i in parts.indices {
            guard let token = tokens[parts[i]] else { continue }
            let left: [Unicode.Scalar]? = i > 0 ? parts[i - 1] : nil
            let right: [Unicode.Scalar]? = i < parts.count - 1 ? parts[i + 1] : nil
            if token.rstrip, let right, !right.isEmpty { parts[i + 1] = PythonText.lstrip(right) }
            if token.lstrip, let left, !left.isEmpty { parts[i - 1] = PythonText.rstrip(left) }
            if token.singleWord, let left, let last = left.last, last != " " {
                parts[i - 1] += parts[i]
                parts[i] = []
            } else if token.singleWord, let right, let first = right.first, first != " " {
                parts[i + 1] = parts[i] + parts[i + 1]
                parts[i] = []
            }
        }
        return parts.compactMap { part in
            if part.isEmpty { return nil }
            if let token = tokens[part] { return .token(token) }
            return .text(part)
        }
    }

    /// transformers' `Trie.split`, step for step: partial matches are tracked per start position; when one
    /// completes, earlier-or-equal starts are extended as far as the trie allows and the longest wins.
    private func trieSplit(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var states: [(start: Int, node: Int)] = []
        var offsets = [0]
        var skip = 0
        for current in text.indices {
            if current < skip { continue }
            let char = text[current]
            var removed = Set<Int>()
            var reset = false
            for si in states.indices {
                var start = states[si].start
                let node = states[si].node
                if terminal[node] {
                    var end = current
                    for (lookStart, lookNode) in states {
                        var lookNode = lookNode
                        var lookahead: Int
                        if lookStart > start {
                            break
                        } else if lookStart < start {
                            lookahead = current + 1
                            end = current + 1
                        } else {
                            lookahead = current
                            end = current
                        }
                        if terminal[lookNode] {
                            start = lookStart
                            end = lookahead
                            skip = lookahead
                        }
                        while lookahead < text.count, let next = children[lookNode][text[lookahead]] {
                            lookNode = next
                            lookahead += 1
                            if terminal[lookNode] {
                                start = lookStart
                                end = lookahead
                                skip = lookahead
                            }
                        }
                    }
                    offsets.append(start)
                    offsets.append(end)
                    reset = true
                    break
                } else if let next = children[node][char] {
                    states[si].node = next
                } else {
                    removed.insert(start)
                }
            }
            if reset {
                states.removeAll()
            } else if !removed.isEmpty {
                states.removeAll { removed.contains($0.start) }
            }
            if current >= skip, let next = children[0][char] {
                states.append((current, next))
            }
        }
        for state in states where terminal[state.node] {
            offsets.append(state.start)
            offsets.append(text.count)
            break
        }
        offsets.append(text.count)
        var parts: [[Unicode.Scalar]] = []
        var start = 0
        for end in offsets where start < end {
            parts.append(Array(text[start..<end]))
            start = end
        }
        return parts
    }
}
