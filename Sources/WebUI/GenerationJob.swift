import EANumerics
import Foundation
import Runner
import WeightOps

/// What a generation loads: the model paths a request's names resolve to, and its LoRA.
struct ModelSelection: Sendable, Equatable {
    var paths: ModelPaths
    var loras: [LoRASpec]
}

/// A generation as a job: settings checked against the models (names and size) when it is asked for, then the
/// pipeline `generate` runs, with its progress and cancellation, and the run saved in the samples folder.
enum GenerationJob {
    /// The selection the settings name, and the settings with every name and the size resolved.
    static func resolve(_ settings: GenerationSettings, catalog: ModelCatalog) throws -> (ModelSelection, GenerationSettings) {
        var s = settings
        guard let first = catalog.transformers.first else {
            throw APIError.field("transformer", "no PixArt diffusers folder found under the models folder")
        }
        let transformer = try s.transformer.map { try ModelCatalog.choose($0, in: catalog.transformers, field: "transformer") } ?? first
        s.transformer = transformer.name
        var paths = ModelPaths(pixart: transformer.path, motionModule: nil, config: catalog.config)
        switch s.motionModule {
        case nil: paths.motionModule = catalog.motionModules.first?.path; s.motionModule = catalog.motionModules.first?.name ?? ""
        case ""?: break
        case let name?: paths.motionModule = try ModelCatalog.choose(name, in: catalog.motionModules, field: "motionModule").path
        }
        if let name = s.personalized, !name.isEmpty {
            paths.transformer = try ModelCatalog.choose(name, in: catalog.personalized, field: "personalized").path
        } else {
            s.personalized = ""
        }
        var loras: [LoRASpec] = []
        if let name = s.lora, !name.isEmpty {
            loras = [LoRASpec(path: try ModelCatalog.choose(name, in: catalog.loras, field: "lora").path, multiplier: s.loraWeight)]
        } else {
            s.lora = ""
        }
        let rule: (defaultSize: Int, multiple: Int)
        do { rule = try EasyAnimatePipeline.sizeRule(paths: paths) } catch {
            throw APIError(.unprocessableContent, "transformer: \(transformer.name): \(error)")
        }
        let (_, height, width) = s.request.videoSize(defaultSize: rule.defaultSize, vaeScaleFactor: 1)
        for (field, value) in [("width", width), ("height", height)] where value % rule.multiple != 0 || !GenerationSettings.Bounds.size.contains(value) {
            throw APIError.field(field, "must be a multiple of \(rule.multiple) for this model, from \(GenerationSettings.Bounds.size.lowerBound) to \(GenerationSettings.Bounds.size.upperBound); got \(value)")
        }
        s.width = width
        s.height = height
        return (ModelSelection(paths: paths, loras: loras), s)
    }

    /// Runs the pipeline and saves the run; returns the final status (with the run id).
    static func run(_ settings: GenerationSettings, selection: ModelSelection, status initial: JobStatus, store: RunStore,
                    pipelines: PipelineCache, report: @escaping @Sendable (JobStatus) -> Void,
                    isCancelled: @escaping @Sendable () -> Bool) throws -> JobStatus {
        var status = initial
        var clock = StageClock()
        var stages: [RunRecord.Stage] = []
        let start = Date()
        clock.begin(PipelineStage.loading.rawValue)
        clock.progress(&status, done: 0, total: nil, unit: "model")
        report(status)
        let pipeline = try pipelines.pipeline(for: selection)
        stages.append(.init(stage: PipelineStage.loading.rawValue, seconds: Date().timeIntervalSince(start)))
        var secondsPerStep: Double?
        let video = try pipeline.generate(settings.request, isCancelled: isCancelled) { event in
            switch event {
            case let .stageStarted(stage):
                clock.begin(stage.rawValue)
                clock.progress(&status, done: 0, total: nil, unit: stage == .vae ? "frame" : "step")
            case let .progress(stage, done, total):
                clock.progress(&status, done: Int64(done), total: Int64(total), unit: stage == .vae ? "frame" : "step")
                if stage == .denoising { secondsPerStep = status.secondsPerUnit }
            case let .stageFinished(stage, seconds):
                stages.append(.init(stage: stage.rawValue, seconds: seconds))
                return
            }
            report(status)
        }
        if isCancelled() { throw RunnerError.cancelled(stage: "writing the video") }
        clock.begin("write")
        clock.progress(&status, done: 0, total: nil, unit: "file")
        report(status)
        let id = RunStore.newID()
        let (frames, height, width) = FrameComparison.dimensions(video)
        try store.save(video: video, fps: settings.fps, id: id) { videoFile, framesFile, writeSeconds in
            RunRecord(id: id, created: ISO8601DateFormatter().string(from: start), settings: settings, video: videoFile,
                      rawFrames: framesFile, frames: frames, width: width, height: height, fps: settings.fps,
                      stages: stages + [.init(stage: "write", seconds: writeSeconds)],
                      seconds: Date().timeIntervalSince(start), secondsPerStep: secondsPerStep,
                      blasCore: BLAS.coreDescription, lora: pipeline.loraReport?.lines)
        }
        status.run = id
        status.stage = nil
        return status
    }
}

/// The last pipeline loaded, kept for the next job with the same models (loading a real model set takes seconds
/// and gigabytes). Only the job thread uses it.
final class PipelineCache: @unchecked Sendable {
    private var loaded: (selection: ModelSelection, pipeline: EasyAnimatePipeline)?

    func pipeline(for selection: ModelSelection) throws -> EasyAnimatePipeline {
        if let loaded, loaded.selection == selection { return loaded.pipeline }
        loaded = nil   // free the old one before loading the next
        let pipeline = try EasyAnimatePipeline(paths: selection.paths, loras: selection.loras)
        loaded = (selection, pipeline)
        return pipeline
    }
}
