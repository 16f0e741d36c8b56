import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

/// The golden scheduler runs (fixtures/ea-tiny/goldens/schedulers.safetensors): each sampler built from the
/// fixture yaml's `noise_scheduler_kwargs`, `set_timesteps(N)`, then from `sample0` every step with the stand-in
/// model `tanh(model_input) * 0.7 + 0.05 * (i + 1)`; Euler A draws its noise from a generator seeded 43.
@Suite("Schedulers")
struct SchedulerTests {
    /// Golden key prefix per sampler.
    static let goldenNames: [Sampler: String] = [
        .euler: "Euler", .eulerAncestral: "Euler_A", .dpmSolverMultistep: "DPMpp", .pndm: "PNDM", .ddim: "DDIM",
    ]

    static func values(_ file: SafetensorsFile, _ key: String) throws -> [Double] {
        let view = try file.tensor(key)
        guard view.dtype == .f64 else { return view.toFloat32().map(Double.init) }
        // F64 goldens (timesteps, init_noise_sigma) decoded exactly.
        let bytes = view.copyBytes()
        return stride(from: 0, to: bytes.count, by: 8).map { offset in
            Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) })
        }
    }

    static func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    static func config() throws -> SchedulerConfig {
        try SchedulerConfig(contentsOf: Fixtures.path("easyanimate_video_motion_module_v1.yaml"))
    }

    @Test("every sampler reproduces diffusers 0.27 at 5 and 30 steps: timesteps, init sigma, every model input and step",
          arguments: Sampler.allCases, [5, 30])
    func matchesGolden(sampler: Sampler, steps: Int) throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("schedulers.safetensors"))
        let prefix = "\(try #require(Self.goldenNames[sampler]))_\(steps)"
        var scheduler = try sampler.makeScheduler(config: Self.config())
        try scheduler.setTimesteps(steps)

        let timesteps = try Self.values(golden, "\(prefix).timesteps")
        #expect(scheduler.timesteps.count == timesteps.count)
        #expect(Self.maxDifference(scheduler.timesteps, timesteps) <= Tolerances.schedulerStep(timesteps), "\(prefix).timesteps")
        let sigma = try Self.values(golden, "\(prefix).init_noise_sigma")
        #expect(Self.maxDifference([Double(scheduler.initNoiseSigma)], sigma) <= Tolerances.schedulerStep(sigma), "\(prefix).init_noise_sigma")

        var sample = try golden.tensor("\(prefix).sample0").toFloat32()
        var generator = TorchGenerator(seed: 43)
        for (i, t) in scheduler.timesteps.enumerated() {
            let modelInput = try scheduler.scaleModelInput(sample, timestep: t)
            let expectedInput = try Self.values(golden, "\(prefix).model_input.\(i)")
            let inputDiff = Self.maxDifference(modelInput.map(Double.init), expectedInput)
            #expect(inputDiff <= Tolerances.schedulerStep(expectedInput), "\(prefix).model_input.\(i): max abs diff \(inputDiff)")

            let offset = Float(0.05 * Double(i + 1))
            let modelOutput = modelInput.map { tanhf($0) * 0.7 + offset }
            sample = try scheduler.step(modelOutput: modelOutput, timestep: t, sample: sample, generator: &generator)
            let expected = try Self.values(golden, "\(prefix).prev_sample.\(i)")
            let diff = Self.maxDifference(sample.map(Double.init), expected)
            #expect(diff <= Tolerances.schedulerStep(expected), "\(prefix).prev_sample.\(i): max abs diff \(diff)")
        }
        #expect(golden.info("\(prefix).prev_sample.\(scheduler.timesteps.count)") == nil, "\(prefix): golden has more steps")
    }

    @Test("sampler names: the CLI spellings, case-insensitive, and EasyAnimate's 'Euler A'; others list the names")
    func samplerNames() throws {
        #expect(try Sampler(parsing: "Euler") == .euler)
        #expect(try Sampler(parsing: "euler-a") == .eulerAncestral)
        #expect(try Sampler(parsing: "Euler A") == .eulerAncestral)
        #expect(try Sampler(parsing: "DPM++") == .dpmSolverMultistep)
        #expect(try Sampler(parsing: "pndm") == .pndm)
        #expect(try Sampler(parsing: "DDIM") == .ddim)
        #expect(Sampler.names == "Euler, Euler-A, DPM++, PNDM or DDIM")
        #expect {
            _ = try Sampler(parsing: "LMS")
        } throws: { error in
            "\(error)" == "unknown sampler 'LMS'; use one of Euler, Euler-A, DPM++, PNDM or DDIM"
        }
    }

    @Test("the scheduler golden holds exactly the five samplers at 5 and 30 steps")
    func goldenCoversEverySampler() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("schedulers.safetensors"))
        let prefixes = Set(golden.keys.compactMap { $0.split(separator: ".").first.map(String.init) })
        let expected = Set(Sampler.allCases.flatMap { sampler in [5, 30].map { "\(Self.goldenNames[sampler] ?? "")_\($0)" } })
        #expect(prefixes == expected)
    }

    @Test("the yaml gives exactly its four noise_scheduler_kwargs")
    func yamlConfig() throws {
        let config = try Self.config()
        #expect(config.values == [
            "beta_start": .double(0.0001), "beta_end": .double(0.02),
            "beta_schedule": .string("linear"), "steps_offset": .int(1),
        ])
    }

    @Test("a diffusers scheduler_config.json loads like from_config, including Python's -Infinity")
    func diffusersJSON() throws {
        let config = try SchedulerConfig(contentsOf: Fixtures.path("tiny-pixart/scheduler/scheduler_config.json"))
        #expect(config.values["_class_name"] == nil)
        #expect(try config.double("lambda_min_clipped", default: 0) == -.infinity)
        #expect(try config.string("timestep_spacing", default: "") == "linspace")
        // Its explicit linspace spacing overrides PNDM's own leading default, as from_config does.
        var pndm = try Sampler.pndm.makeScheduler(config: config)
        try pndm.setTimesteps(5)
        #expect(pndm.timesteps.first == 999)
        // The DPM-Solver config it stores gives the same schedule as the yaml.
        var fromJSON = try Sampler.dpmSolverMultistep.makeScheduler(config: config)
        var fromYAML = try Sampler.dpmSolverMultistep.makeScheduler(config: Self.config())
        try fromJSON.setTimesteps(30)
        try fromYAML.setTimesteps(30)
        #expect(fromJSON.timesteps == fromYAML.timesteps)
    }

    @Test("unknown or unsupported options are errors that name the option and file")
    func rejectsBadOptions() throws {
        #expect(throws: RunnerError.self) {
            try SchedulerConfig(easyAnimateYAML: "noise_scheduler_kwargs:\n  beta_strat: 0.001\n", source: "x.yaml")
        }
        #expect(throws: RunnerError.self) { try SchedulerConfig(easyAnimateYAML: "vae_kwargs: {}\n", source: "x.yaml") }
        let karras = try SchedulerConfig(["use_karras_sigmas": .bool(true)], source: "k.yaml")
        do {
            _ = try Sampler.dpmSolverMultistep.makeScheduler(config: karras)
            Issue.record("use_karras_sigmas should be rejected")
        } catch let error as RunnerError {
            #expect(error.description.contains("use_karras_sigmas") && error.description.contains("k.yaml"))
        }
        let badSchedule = try SchedulerConfig(["beta_schedule": .string("cubic")], source: "b.yaml")
        #expect(throws: RunnerError.self) { try Sampler.euler.makeScheduler(config: badSchedule) }
    }

    @Test("other timestep spacings follow diffusers' NumPy formulas")
    func otherSpacings() throws {
        func timesteps(_ sampler: Sampler, _ steps: Int, _ options: [String: SchedulerConfig.Value]) throws -> [Double] {
            var scheduler = try sampler.makeScheduler(config: SchedulerConfig(options))
            try scheduler.setTimesteps(steps)
            return scheduler.timesteps
        }
        // np.round(np.arange(1000, 0, -1000 / 5)).astype(np.int64) - 1
        #expect(try timesteps(.ddim, 5, ["timestep_spacing": .string("trailing")]) == [999, 799, 599, 399, 199])
        // (np.arange(0, 6) * (1000 // 6)).round()[::-1][:-1] + 1
        #expect(try timesteps(.dpmSolverMultistep, 5, ["timestep_spacing": .string("leading"), "steps_offset": .int(1)])
                == [831, 665, 499, 333, 167])
        // np.arange(1000, 0, -1000 / 3).round().astype(np.float32) - 1
        #expect(try timesteps(.euler, 3, ["timestep_spacing": .string("trailing")]) == [999, 666, 332])
        // skip_prk_steps: concatenate([t[:-1], t[-2:-1], t[-1:]])[::-1] with t = arange(5) * 200 + 1
        #expect(try timesteps(.pndm, 5, ["skip_prk_steps": .bool(true), "steps_offset": .int(1)]) == [801, 601, 601, 401, 201, 1])
    }

    @Test("the Tensor overloads keep the latent shape")
    func tensorOverloads() throws {
        var scheduler = try Sampler.eulerAncestral.makeScheduler(config: Self.config())
        try scheduler.setTimesteps(5)
        var generator = TorchGenerator(seed: 43)
        let latents = try generator.randn(shape: [1, 4, 2, 4, 4])
        let t = scheduler.timesteps[0]
        let input = try scheduler.scaleModelInput(latents, timestep: t)
        let next = try scheduler.step(modelOutput: input, timestep: t, sample: latents, generator: &generator)
        #expect(input.shape == latents.shape && next.shape == latents.shape)
    }

    @Test("stepping before setTimesteps or with mismatched sizes is an error, not a crash")
    func misuseIsAnError() throws {
        var generator = TorchGenerator(seed: 0)
        for sampler in Sampler.allCases {
            var scheduler = try sampler.makeScheduler(config: Self.config())
            #expect(throws: RunnerError.self) {
                try scheduler.step(modelOutput: [0], timestep: 999, sample: [0], generator: &generator)
            }
            try scheduler.setTimesteps(5)
            let t = scheduler.timesteps[0]
            #expect(throws: RunnerError.self) {
                try scheduler.step(modelOutput: [0, 1], timestep: t, sample: [0], generator: &generator)
            }
        }
        var pndm = try Sampler.pndm.makeScheduler(config: Self.config())
        #expect(throws: RunnerError.self) { try pndm.setTimesteps(3) }
    }
}
