import Foundation
import Runner
import WeightOps

/// The model choices the page offers, read from the models tree (EasyAnimate's `Diffusion_Transformer/`,
/// `Motion_Module/`, `Personalized_Model/`) or from the bundled set `generate` runs without model flags. A client
/// names a choice; only names in these lists are accepted, never a path.
struct ModelCatalog: Sendable {
    enum Source: Sendable, Equatable {
        case tree(root: String)
        /// What `ModelLocator.bundledFixture()` finds, with the checkpoints beside its motion module.
        case bundled(ModelPaths)
    }

    struct Choice: Sendable, Encodable, Equatable {
        let name: String
        let kind: String
        let bytes: Int
        /// Where it is: not sent to the client.
        let path: String
        enum CodingKeys: String, CodingKey { case name, kind, bytes }
    }

    let source: Source
    let transformers: [Choice]
    let motionModules: [Choice]
    /// Personalized 2D backbones or full 3D checkpoints (`--transformer`).
    let personalized: [Choice]
    /// kohya LoRAs (`--lora`).
    let loras: [Choice]
    /// The config every choice runs with (the bundled set's own yaml; a tree uses the v1 config).
    let config: String?
    /// Checkpoints found that fit no list, with the reason.
    let notes: [String]

    /// Reads the lists now: the page's refresh buttons call this again.
    static func scan(_ source: Source) throws -> ModelCatalog {
        let fm = FileManager.default
        switch source {
        case let .tree(root):
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw RunnerError.invalidInput("\(root): no such models folder")
            }
            let diffusion = (root as NSString).appendingPathComponent(ModelsLayout.diffusionTransformer)
            let transformers = entries(in: diffusion).filter {
                fm.fileExists(atPath: ($0 as NSString).appendingPathComponent("model_index.json"))
            }.map { Choice(name: ($0 as NSString).lastPathComponent, kind: "pixart-diffusers", bytes: folderBytes($0), path: $0) }
            let modules = entries(in: (root as NSString).appendingPathComponent(ModelsLayout.motionModule))
                .filter { $0.hasSuffix(".safetensors") }
            let personal = entries(in: (root as NSString).appendingPathComponent(ModelsLayout.personalizedModel))
                .filter { $0.hasSuffix(".safetensors") }
            let catalog = classify(modules + personal)
            return ModelCatalog(source: source, transformers: transformers, motionModules: catalog.motion,
                                personalized: catalog.personalized, loras: catalog.loras, config: nil, notes: catalog.notes)
        case let .bundled(paths):
            let transformer = Choice(name: (paths.pixart as NSString).lastPathComponent, kind: "pixart-diffusers",
                                     bytes: folderBytes(paths.pixart), path: paths.pixart)
            var files: [String] = []
            var folder: String?
            if let module = paths.motionModule {
                folder = (module as NSString).deletingLastPathComponent
                files = entries(in: folder!).filter { $0.hasSuffix(".safetensors") }
            }
            let catalog = classify(files)
            return ModelCatalog(source: source, transformers: [transformer], motionModules: catalog.motion,
                                personalized: catalog.personalized, loras: catalog.loras, config: paths.config, notes: catalog.notes)
        }
    }

    /// The choice named `name` in `list`, or an error naming `field` and what may be chosen.
    static func choose(_ name: String, in list: [Choice], field: String) throws -> Choice {
        guard let choice = list.first(where: { $0.name == name }) else {
            let names = list.map(\.name)
            throw APIError.field(field, "unknown model '\(name)'; choose one of: \(names.isEmpty ? "(none found)" : names.joined(separator: ", "))")
        }
        return choice
    }

    private struct Classified {
        var motion: [Choice] = [], personalized: [Choice] = [], loras: [Choice] = [], notes: [String] = []
    }

    /// Sorts checkpoints into lists by the kind `inspect` recognises from their tensors (never by name).
    private static func classify(_ files: [String]) -> Classified {
        var result = Classified()
        for file in files {
            let name = (file as NSString).lastPathComponent
            let inspected: InspectedFile
            do {
                inspected = try Inspection.inspectCheckpoint(file)
            } catch {
                result.notes.append("\(name): \(error)")
                continue
            }
            let choice = Choice(name: name, kind: inspected.kind.rawValue, bytes: inspected.bytes, path: file)
            switch inspected.kind {
            case .motionModule: result.motion.append(choice)
            case .pixartTransformer2D, .easyAnimateTransformer3D: result.personalized.append(choice)
            case .kohyaLoRA: result.loras.append(choice)
            case .vae, .t5Encoder, .unknown:
                result.notes.append("\(name): a \(inspected.kind.rawValue) checkpoint, offered in no list")
            }
        }
        return result
    }

    /// The entries of a folder, sorted, as full paths; hidden names (partial outputs) left out.
    private static func entries(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            .map { (folder as NSString).appendingPathComponent($0) }
    }

    private static func folderBytes(_ folder: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var total = 0
        while let relative = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: (folder as NSString).appendingPathComponent(relative))
            if (attributes?[.type] as? FileAttributeType) == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
        }
        return total
    }
}
