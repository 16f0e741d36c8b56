import Foundation

/// The caption grammar of fixtures/ea-demo, read from its grammar.json (written by tools/train-demo/train.py):
/// "a {colour} {shape} moving {direction} on a {background} background", the nine palette colours the judge
/// labels pixels with, and the 24 evaluation prompts (12 seen in training, 12 held-out combinations).
public struct DemoGrammar: Sendable {
    /// One caption's fields.
    public struct Caption: Sendable, Equatable {
        public var colour: String
        public var shape: String
        public var direction: String
        public var background: String
    }

    /// A palette colour: "object:<colour>" or "background:<background>", RGB in [0, 1].
    public struct PaletteColour: Sendable {
        public var name: String
        public var rgb: SIMD3<Double>
    }

    public let palette: [PaletteColour]
    public let shapes: [String]
    public let directions: [String]
    public let seenPrompts: [String]
    public let heldOutPrompts: [String]

    public static let eaDemo = Fixtures.packageRoot.appendingPathComponent("fixtures/ea-demo")

    public init(contentsOf url: URL = DemoGrammar.eaDemo.appendingPathComponent("grammar.json")) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let root = json as? [String: Any],
              let palette = root["palette"] as? [[String: Any]],
              let shapes = root["shapes"] as? [String], let directions = root["directions"] as? [String],
              let prompts = root["eval_prompts"] as? [String: [String]],
              let seen = prompts["seen"], let heldOut = prompts["held_out"] else {
            throw DemoGrammarError(description: "\(url.path): not the grammar.json train.py writes (palette, shapes, directions, eval_prompts)")
        }
        // The palette is a list, not the colours' dictionary: its order breaks ties between equally near colours.
        self.palette = try palette.map { entry in
            guard let name = entry["name"] as? String, let rgb = entry["rgb"] as? [Double], rgb.count == 3 else {
                throw DemoGrammarError(description: "\(url.path): a palette entry is not {\"name\", \"rgb\": [r, g, b]}")
            }
            return PaletteColour(name: name, rgb: SIMD3(rgb[0], rgb[1], rgb[2]) / 255)
        }
        self.shapes = shapes
        self.directions = directions
        self.seenPrompts = seen
        self.heldOutPrompts = heldOut
    }

    /// The fields of a prompt in the grammar (grammar.py's `parse`: lower-cased, trimmed, nine words).
    public func parse(_ prompt: String) throws -> Caption {
        let words = prompt.lowercased().split(whereSeparator: \.isWhitespace).map(String.init)
        guard words.count == 9, words[0] == "a", words[3] == "moving", words[5] == "on", words[6] == "a",
              words[8] == "background", palette.contains(where: { $0.name == "object:\(words[1])" }),
              shapes.contains(words[2]), directions.contains(words[4]),
              palette.contains(where: { $0.name == "background:\(words[7])" }) else {
            throw DemoGrammarError(description: "not in the grammar: '\(prompt)'")
        }
        return Caption(colour: words[1], shape: words[2], direction: words[4], background: words[7])
    }
}

public struct DemoGrammarError: Error, CustomStringConvertible {
    public var description: String
}
