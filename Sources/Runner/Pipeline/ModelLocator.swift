import Foundation
import WeightOps

/// Where the components of one EasyAnimate v1 model set live on disk.
public struct ModelPaths: Sendable, Equatable {
    /// The PixArt diffusers folder (transformer/, vae/, text_encoder/, tokenizer/, scheduler/).
    public var pixart: String
    /// The motion module put on top of the 2D transformer (none: the transformer file must already be 3D).
    public var motionModule: String?
    /// A personalized 2D backbone or a full 3D checkpoint replacing the diffusers transformer's weights.
    public var transformer: String?
    /// EasyAnimate's yaml config; nil means the v1 config the release ships with.
    public var config: String?

    public init(pixart: String, motionModule: String?, transformer: String? = nil, config: String? = nil) {
        self.pixart = pixart
        self.motionModule = motionModule
        self.transformer = transformer
        self.config = config
    }
}

/// Finds model sets: a `models/` tree laid out as EasyAnimate's README describes, or the bundled demo set.
public enum ModelLocator {
    /// The bundled demo model set, `fixtures/ea-demo` (trained by tools/train-demo on moving shapes, so its videos
    /// show what the prompt says), found above the working directory or the executable. The exactness fixture
    /// `fixtures/ea-tiny` has random weights and is always named explicitly.
    public static func bundledFixture() throws -> ModelPaths {
        var starts = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        for start in starts {
            var dir = start.standardizedFileURL
            while true {
                let candidate = dir.appendingPathComponent("fixtures/ea-demo")
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("demo-pixart/model_index.json").path) {
                    return ModelPaths(
                        pixart: candidate.appendingPathComponent("demo-pixart").path,
                        motionModule: candidate.appendingPathComponent("motion_module.safetensors").path,
                        config: candidate.appendingPathComponent("easyanimate_video_motion_module_v1.yaml").path)
                }
                if dir.path == "/" { break }
                dir.deleteLastPathComponent()
            }
        }
        throw RunnerError.invalidInput(
            "no model given and the bundled fixtures/ea-demo was not found above \(FileManager.default.currentDirectoryPath): "
            + "pass --models DIR or --pixart FOLDER --motion-module FILE")
    }

    /// The model set in a `models/` tree: `Diffusion_Transformer/<one diffusers folder>` and
    /// `Motion_Module/<one .safetensors>` (pass `motionModule` to pick one when there are several).
    public static func modelsTree(_ root: String, motionModule: String? = nil) throws -> ModelPaths {
        let fm = FileManager.default
        let diffusion = (root as NSString).appendingPathComponent("Diffusion_Transformer")
        let candidates = ((try? fm.contentsOfDirectory(atPath: diffusion)) ?? []).sorted().filter {
            fm.fileExists(atPath: (diffusion as NSString).appendingPathComponent("\($0)/model_index.json"))
        }
        guard let first = candidates.first else {
            throw RunnerError.invalidInput("\(root): no diffusers folder with model_index.json under Diffusion_Transformer/ (run `ea-weights prepare`)")
        }
        guard candidates.count == 1 else {
            throw RunnerError.invalidInput("\(diffusion): several model folders (\(candidates.joined(separator: ", "))); pass --pixart to choose one")
        }
        var module = motionModule
        if module == nil {
            let dir = (root as NSString).appendingPathComponent("Motion_Module")
            let files = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard files.count <= 1 else {
                throw RunnerError.invalidInput("\(dir): several motion modules (\(files.joined(separator: ", "))); pass --motion-module to choose one")
            }
            module = files.first.map { (dir as NSString).appendingPathComponent($0) }
        }
        return ModelPaths(pixart: (diffusion as NSString).appendingPathComponent(first), motionModule: module)
    }

    /// Checks the diffusers folder with the layout check every command uses, and that the other files exist.
    public static func validate(_ paths: ModelPaths) throws {
        let fm = FileManager.default
        let check = PixArtFolder.check(paths.pixart)
        guard check.problems.isEmpty else {
            let missing = check.filesInMissingFolders.isEmpty ? "" : " (no \(check.filesInMissingFolders.joined(separator: ", ")))"
            throw RunnerError.invalidInput(
                "\(paths.pixart): not a PixArt diffusers folder: \(check.problems.joined(separator: "; "))\(missing)")
        }
        for file in [paths.motionModule, paths.transformer, paths.config].compactMap({ $0 }) where !fm.fileExists(atPath: file) {
            throw RunnerError.invalidInput("\(file): no such file")
        }
    }
}
