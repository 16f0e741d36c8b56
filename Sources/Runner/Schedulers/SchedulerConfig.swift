import Foundation
import Yams

/// The keyword arguments a diffusers 0.27.0 scheduler is built from, by their diffusers names.
///
/// EasyAnimate builds its sampler as `Scheduler(**config["noise_scheduler_kwargs"])`: only the keys in the
/// yaml are set and every other option keeps that scheduler class's own default (PNDM and DDIM default to
/// `leading` spacing, Euler and DPM-Solver to `linspace`, and so on). Each scheduler reads the keys it knows
/// with its own defaults, so one config serves all five samplers. A diffusers `scheduler_config.json`
/// (`from_config`) sets many more keys, which then override those defaults for every sampler.
public struct SchedulerConfig: Sendable, Equatable {
    /// One option value as written in YAML or JSON.
    public enum Value: Sendable, Equatable {
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        case list([Value])
        case null
    }

    /// Every `__init__` option of the five diffusers 0.27.0 schedulers.
    public static let knownKeys: Set<String> = [
        "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type",
        "timestep_spacing", "steps_offset", "rescale_betas_zero_snr",
        "interpolation_type", "use_karras_sigmas", "sigma_min", "sigma_max", "timestep_type",
        "solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type",
        "solver_type", "lower_order_final", "euler_at_final", "use_lu_lambdas", "final_sigmas_type",
        "lambda_min_clipped", "variance_type",
        "skip_prk_steps", "set_alpha_to_one", "clip_sample", "clip_sample_range",
    ]

    /// Options by diffusers name.
    public var values: [String: Value]
    /// Where the options came from, for error messages.
    public var source: String

    /// Options given directly; keys no diffusers 0.27 scheduler knows are an error (they would be a
    /// `TypeError` in EasyAnimate too).
    public init(_ values: [String: Value] = [:], source: String = "scheduler options") throws {
        let unknown = values.keys.filter { !Self.knownKeys.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw RunnerError.invalidConfig(
                path: source, reason: "unknown scheduler option(s) \(unknown.joined(separator: ", "))")
        }
        self.values = values
        self.source = source
    }

    /// EasyAnimate's model yaml (e.g. `easyanimate_video_motion_module_v1.yaml`): its `noise_scheduler_kwargs`.
    public init(easyAnimateYAML text: String, source: String) throws {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RunnerError.invalidConfig(path: source, reason: "not valid YAML (\(error))")
        }
        guard let kwargs = root?.mapping?["noise_scheduler_kwargs"] else {
            throw RunnerError.invalidConfig(path: source, reason: "has no noise_scheduler_kwargs section")
        }
        guard let mapping = kwargs.mapping else {
            throw RunnerError.invalidConfig(path: source, reason: "noise_scheduler_kwargs is not a mapping")
        }
        try self.init(Self.options(mapping, source: source), source: source)
    }

    /// A diffusers `scheduler/scheduler_config.json`, loaded like `from_config`: bookkeeping keys (`_class_name`,
    /// `_diffusers_version`) and options of other scheduler versions are ignored. Python's `-Infinity`,
    /// `Infinity` and `NaN` are accepted (JSON is read as YAML, which keeps them as strings).
    public init(diffusersJSON text: String, source: String) throws {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RunnerError.invalidConfig(path: source, reason: "not valid JSON (\(error))")
        }
        guard let mapping = root?.mapping else {
            throw RunnerError.invalidConfig(path: source, reason: "is not a JSON object")
        }
        let options = try Self.options(mapping, source: source).filter { Self.knownKeys.contains($0.key) }
        try self.init(options, source: source)
    }

    /// Reads `path` as an EasyAnimate yaml (`.yaml`/`.yml`) or a diffusers `scheduler_config.json` (anything else).
    public init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RunnerError.invalidConfig(path: path, reason: "cannot be read (\(error.localizedDescription))")
        }
        let lowered = path.lowercased()
        if lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") {
            try self.init(easyAnimateYAML: text, source: path)
        } else {
            try self.init(diffusersJSON: text, source: path)
        }
    }

    private static func options(_ mapping: Node.Mapping, source: String) throws -> [String: Value] {
        var result: [String: Value] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else {
                throw RunnerError.invalidConfig(path: source, reason: "a scheduler option name is not a string")
            }
            result[key] = try value(valueNode, key: key, source: source)
        }
        return result
    }

    private static func value(_ node: Node, key: String, source: String) throws -> Value {
        switch node {
        case .scalar:
            switch node.tag.description {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: if let b = node.bool { return .bool(b) }
            case Tag.Name.int.rawValue: if let i = node.int { return .int(i) }
            case Tag.Name.float.rawValue: if let d = node.float { return .double(d) }
            default: break
            }
            return .string(node.string ?? "")
        case let .sequence(sequence):
            return .list(try sequence.map { try value($0, key: key, source: source) })
        default:
            throw RunnerError.invalidConfig(path: source, reason: "scheduler option \(key) is a mapping, expected a value")
        }
    }

    // MARK: - Typed access with the scheduler's default

    func int(_ key: String, default fallback: Int) throws -> Int {
        switch values[key] {
        case nil, .null?: return fallback
        case let .int(i)?: return i
        case let .double(d)? where d.rounded() == d && abs(d) < 1e15: return Int(d)
        default: throw typeError(key, "an integer")
        }
    }

    func double(_ key: String, default fallback: Double) throws -> Double {
        switch values[key] {
        case nil, .null?: return fallback
        case let .int(i)?: return Double(i)
        case let .double(d)?: return d
        // Python writes -Infinity/Infinity/NaN, and PyYAML-style loaders leave `1e-4` (no dot) a string.
        case let .string(s)?: if let d = Double(s) { return d }
        default: break
        }
        throw typeError(key, "a number")
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        switch values[key] {
        case nil, .null?: return fallback
        case let .bool(b)?: return b
        default: throw typeError(key, "true or false")
        }
    }

    func string(_ key: String, default fallback: String) throws -> String {
        switch values[key] {
        case nil, .null?: return fallback
        case let .string(s)?: return s
        default: throw typeError(key, "a string")
        }
    }

    /// A list of numbers, or nil when absent or null.
    func doubles(_ key: String) throws -> [Double]? {
        switch values[key] {
        case nil, .null?: return nil
        case let .list(items)?:
            return try items.map { item in
                switch item {
                case let .int(i): return Double(i)
                case let .double(d): return d
                default: throw typeError(key, "a list of numbers")
                }
            }
        default: throw typeError(key, "a list of numbers")
        }
    }

    /// Rejects an option value this runner does not implement, naming it (never silently ignored).
    func require(_ key: String, isDefault: Bool, sampler: String) throws {
        guard isDefault else {
            throw RunnerError.invalidConfig(
                path: source, reason: "scheduler option \(key) = \(describe(values[key])) is not supported by the \(sampler) sampler")
        }
    }

    private func typeError(_ key: String, _ expected: String) -> RunnerError {
        .invalidConfig(path: source, reason: "scheduler option \(key) must be \(expected), found \(describe(values[key]))")
    }

    private func describe(_ value: Value?) -> String {
        switch value {
        case nil, .null?: return "null"
        case let .bool(b)?: return String(b)
        case let .int(i)?: return String(i)
        case let .double(d)?: return String(d)
        case let .string(s)?: return "'\(s)'"
        case let .list(items)?: return "a list of \(items.count)"
        }
    }
}
