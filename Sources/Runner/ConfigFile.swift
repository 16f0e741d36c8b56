import Foundation
import Safetensors

/// Reads a model's JSON config file (config.json of a diffusers or transformers component).
enum ConfigFile {
    /// `what` names the file in the error ("the transformer config").
    static func json(at path: String, what: String) throws -> JSONValue {
        guard let data = SmallFile.contents(atPath: path) else {
            throw RunnerError.invalidConfig(path: path, reason: "cannot read \(what)")
        }
        do {
            return try JSONParser.parse(data)
        } catch {
            throw RunnerError.invalidConfig(path: path, reason: "not valid JSON (\(error))")
        }
    }
}
