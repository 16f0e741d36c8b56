/// The samplers of `ea-weights generate --sampler`, named as in EasyAnimate's predict script, each a
/// diffusers 0.27.0 scheduler class.
public enum Sampler: String, CaseIterable, Sendable {
    case euler = "Euler"
    case eulerAncestral = "Euler-A"
    case dpmSolverMultistep = "DPM++"
    case pndm = "PNDM"
    case ddim = "DDIM"

    /// The names `--sampler` takes, for help texts and errors: "Euler, Euler-A, DPM++, PNDM or DDIM".
    public static var names: String {
        let all = allCases.map(\.rawValue)
        return all.dropLast().joined(separator: ", ") + " or " + (all.last ?? "")
    }

    /// The one sampler-name parser: the CLI names case-insensitively, and EasyAnimate's spelling `Euler A`; any
    /// other name is an error listing `names`.
    public init(parsing name: String) throws {
        let folded = name.lowercased().replacingOccurrences(of: " ", with: "-")
        guard let sampler = Sampler.allCases.first(where: { $0.rawValue.lowercased() == folded }) else {
            throw RunnerError.invalidInput("unknown sampler '\(name)'; use one of \(Sampler.names)")
        }
        self = sampler
    }

    /// The diffusers class this sampler reproduces.
    public var diffusersClass: String {
        switch self {
        case .euler: return "EulerDiscreteScheduler"
        case .eulerAncestral: return "EulerAncestralDiscreteScheduler"
        case .dpmSolverMultistep: return "DPMSolverMultistepScheduler"
        case .pndm: return "PNDMScheduler"
        case .ddim: return "DDIMScheduler"
        }
    }

    /// `DiffusersClass(**options)`: every option the config leaves out keeps this class's 0.27.0 default.
    public func makeScheduler(config: SchedulerConfig) throws -> any Scheduler {
        switch self {
        case .euler: return try EulerDiscreteScheduler(config: config)
        case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: config)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: config)
        case .pndm: return try PNDMScheduler(config: config)
        case .ddim: return try DDIMScheduler(config: config)
        }
    }
}
