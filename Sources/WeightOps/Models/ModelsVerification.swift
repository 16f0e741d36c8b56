#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Safetensors

/// How to verify a `models/` tree.
public struct VerifyOptions: Sendable {
    public var models: String
    /// Skip hashing: check sizes, headers, kinds and fit only.
    public var fast = false
    public var progress: TerminalProgress = .silent
    public var isCancelled: @Sendable () -> Bool = { Interruption.isRequested }

    public init(models: String) {
        self.models = models
    }
}

/// Everything `verify` found; `ok` only when nothing.
public struct VerifyReport: Sendable, Codable {
    public enum ProblemKind: String, Sendable, Codable {
        case manifest, missing, extra, changed, invalid, layout
        /// A component folder holding weights loaders disagree on (a single file and an index of the same name).
        case ambiguous
        case wrongKind = "wrong-kind"
        case incompatible
        case loraMismatch = "lora-mismatch"
    }

    public struct Problem: Sendable, Codable, Equatable {
        public let kind: ProblemKind
        /// Relative to the models folder.
        public let path: String
        public let message: String
    }

    public let models: String
    public let fast: Bool
    public let filesChecked: Int
    public let bytesHashed: Int64
    public let problems: [Problem]
    /// What was found in good order, one line each, for the readable report.
    public let passed: [String]
    public var ok: Bool { problems.isEmpty }

    enum CodingKeys: String, CodingKey {
        case models, fast, ok, problems, passed
        case filesChecked = "files_checked"
        case bytesHashed = "bytes_hashed"
    }

    public init(models: String, fast: Bool, filesChecked: Int, bytesHashed: Int64, problems: [Problem], passed: [String]) {
        self.models = models
        self.fast = fast
        self.filesChecked = filesChecked
        self.bytesHashed = bytesHashed
        self.problems = problems
        self.passed = passed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        models = try c.decode(String.self, forKey: .models)
        fast = try c.decode(Bool.self, forKey: .fast)
        filesChecked = try c.decode(Int.self, forKey: .filesChecked)
        bytesHashed = try c.decode(Int64.self, forKey: .bytesHashed)
        problems = try c.decode([Problem].self, forKey: .problems)
        passed = try c.decode([String].self, forKey: .passed)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(models, forKey: .models)
        try c.encode(fast, forKey: .fast)
        try c.encode(ok, forKey: .ok)
        try c.encode(filesChecked, forKey: .filesChecked)
        try c.encode(bytesHashed, forKey: .bytesHashed)
        try c.encode(problems, forKey: .problems)
        try c.encode(passed, forKey: .passed)
    }

    /// The readable report.
    public func text() -> String {
        var lines = ["\(models): \(filesChecked) files checked" + (fast ? " (fast: sizes and headers, no hashing)" : ", \(TerminalProgress.bytes(bytesHashed)) hashed")]
        for line in passed { lines.append("  ok          \(line)") }
        for problem in problems {
            lines.append("  " + problem.kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + problem.path + ": " + problem.message)
        }
        lines.append(ok ? "all well" : "\(problems.count) problem\(problems.count == 1 ? "" : "s") found")
        return lines.joined(separator: "\n") + "\n"
    }
}

public enum ModelsVerification {
    /// Checks `models/` against its manifest and EasyAnimate's layout: missing, extra, changed (size, or SHA-256
    /// unless `fast`) and invalid files, wrong kinds, a motion module or personalized model that does not fit the
    /// transformer (block count and width), and LoRAs whose modules match no weight of the transformer or text
    /// encoder. Throws only when the folder cannot be checked at all.
    public static func verify(_ options: VerifyOptions) throws -> VerifyReport {
        var checker = Checker(options: options)
        try checker.run()
        return VerifyReport(
            models: options.models, fast: options.fast, filesChecked: checker.filesChecked,
            bytesHashed: checker.bytesHashed, problems: checker.problems, passed: checker.passed)
    }
}

private struct Checker {
    let options: VerifyOptions
    var models: String { options.models }
    var problems: [VerifyReport.Problem] = []
    var passed: [String] = []
    var filesChecked = 0
    var bytesHashed: Int64 = 0

    init(options: VerifyOptions) {
        self.options = options
    }

    mutating func report(_ kind: VerifyReport.ProblemKind, _ path: String, _ message: String) {
        problems.append(VerifyReport.Problem(kind: kind, path: path, message: message))
    }

    mutating func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: models, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelsError.notFound(path: models, what: "models folder")
        }
        var manifest: Manifest?
        do {
            manifest = try Manifest.read(models: models)
            if manifest == nil {
                report(.manifest, ModelsLayout.manifest, "missing; run `ea-weights prepare` to write it")
            }
        } catch {
            report(.manifest, ModelsLayout.manifest, "\(error)")
        }
        if let manifest { try checkAgainstManifest(manifest) }
        filesChecked = allFiles().filter { $0 != ModelsLayout.manifest }.count
        checkWeightFiles()
        try checkLayout()
        // Grouped by file, in the order found within one file.
        problems = problems.enumerated().sorted { a, b in
            a.element.path != b.element.path ? a.element.path < b.element.path : a.offset < b.offset
        }.map(\.element)
    }

    /// Every .safetensors file and index in the tree, listed in the manifest or not, must be valid.
    mutating func checkWeightFiles() {
        for file in allFiles() where ComponentWeights.isWeightsFile(file) && !file.contains(AtomicOutput.temporaryPrefix) {
            var st = stat()
            guard stat(models + "/" + file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            do {
                _ = try openStateDict(path: models + "/" + file)
            } catch {
                report(.invalid, file, "\(error)".replacingOccurrences(of: models + "/" + file + ": ", with: ""))
            }
        }
    }

    // MARK: manifest: missing, changed, extra, invalid

    mutating func checkAgainstManifest(_ manifest: Manifest) throws {
        var present: [Manifest.Entry] = []
        for entry in manifest.files {
            var st = stat()
            guard lstat(models + "/" + entry.path, &st) == 0 else {
                report(.missing, entry.path, "listed in the manifest but not on disk")
                continue
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                report(.changed, entry.path, "is no longer a regular file")
                continue
            }
            if Int64(st.st_size) != entry.size {
                report(.changed, entry.path, "size \(st.st_size) bytes, the manifest says \(entry.size)")
                continue
            }
            present.append(entry)
        }
        if !options.fast {
            let digests = try hashAll(present.map { models + "/" + $0.path })
            for (entry, digest) in zip(present, digests) where digest.sha256 != entry.sha256 {
                report(.changed, entry.path, "SHA-256 differs from the manifest (modified or corrupted since prepare)")
            }
            bytesHashed = digests.reduce(0) { $0 + $1.size }
        }
        // Kinds as recorded: a file rewritten in place with the same size would show here in --fast mode.
        let kinds = currentKinds(of: present.map(\.path))
        for entry in present {
            if let now = kinds[entry.path], now != entry.kind {
                report(.wrongKind, entry.path, "is now \(now), the manifest says \(entry.kind)")
            }
        }
        let listed = Set(manifest.files.map(\.path))
        for file in allFiles() where !listed.contains(file) && file != ModelsLayout.manifest {
            if file.hasPrefix(AtomicOutput.temporaryPrefix) || file.contains("/" + AtomicOutput.temporaryPrefix) {
                report(.extra, file, "left by an interrupted run; delete it")
            } else {
                report(.extra, file, "not in the manifest; run `ea-weights prepare` to add it, or remove it")
            }
        }
        if problems.isEmpty {
            passed.append("\(manifest.files.count) files match the manifest" + (options.fast ? " (sizes)" : " (sizes and SHA-256)"))
        }
    }

    /// Kinds of files as they are now, computed per model folder so shards get their checkpoint's kind.
    func currentKinds(of paths: [String]) -> [String: String] {
        var byFolder: [String: [String]] = [:]
        var kinds: [String: String] = [:]
        for path in paths {
            let parts = path.split(separator: "/").map(String.init)
            if parts.count > 2, parts[0] == ModelsLayout.diffusionTransformer {
                byFolder[parts[0] + "/" + parts[1], default: []].append(parts.dropFirst(2).joined(separator: "/"))
            } else {
                kinds[path] = FileKinds.ofFile(models + "/" + path)
            }
        }
        for (folder, files) in byFolder {
            for (file, kind) in FileKinds.ofFolder(models + "/" + folder, files: files) {
                kinds[folder + "/" + file] = kind
            }
        }
        return kinds
    }

    /// Hashes files two at a time (reading and SHA-256 overlap on two cores).
    func hashAll(_ paths: [String]) throws -> [FileDigest] {
        let total = paths.reduce(Int64(0)) { $0 + (FilePlacement.fileSize($1) ?? 0) }
        let progress = options.progress
        progress.setTotal(total)
        defer { progress.finish() }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var digests: [FileDigest?]
            var error: Error?
            init(_ n: Int) { digests = Array(repeating: nil, count: n) }
        }
        let results = Results(paths.count)
        let isCancelled = options.isCancelled
        let next = Results(0)
        var cursor = 0
        let workers = min(2, max(paths.count, 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                next.lock.lock()
                let i = cursor
                cursor += 1
                next.lock.unlock()
                guard i < paths.count else { return }
                do {
                    let digest = try FileDigest.compute(path: paths[i], progress: { progress.advance(by: $0) }, isCancelled: isCancelled)
                    results.lock.lock()
                    results.digests[i] = digest
                    results.lock.unlock()
                } catch {
                    results.lock.lock()
                    results.error = results.error ?? error
                    results.lock.unlock()
                    return
                }
            }
        }
        if let error = results.error { throw error }
        return results.digests.map { $0 ?? FileDigest(size: 0, sha256: "") }
    }

    /// Every regular file and link under models/, relative, sorted (folders themselves are not listed).
    func allFiles() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: models) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var st = stat()
            guard lstat(models + "/" + relative, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR {
                if AtomicOutput.isTemporaryName((relative as NSString).lastPathComponent) {
                    files.append(relative)
                    enumerator.skipDescendants()
                }
                continue
            }
            files.append(relative)
        }
        return files.sorted()
    }

    // MARK: layout, kinds, fit, LoRAs

    struct Transformer {
        let folder: String
        let summary: TransformerSummary
        let dict: any StateDict
        let textEncoder: (any StateDict)?
    }

    mutating func checkLayout() throws {
        let fm = FileManager.default
        let dt = ModelsLayout.diffusionTransformer
        var transformers: [Transformer] = []
        let folders = ((try? fm.contentsOfDirectory(atPath: models + "/" + dt)) ?? [])
            .filter { !$0.hasPrefix(".") && isDirectory(models + "/" + dt + "/" + $0) }.sorted()
        if folders.isEmpty {
            report(.layout, dt + "/", "holds no PixArt diffusers folder; run `ea-weights prepare --pixart PixArt-XL-2-512x512.tar`")
        }
        for name in folders {
            if options.isCancelled() { throw ModelsError.cancelled(path: models) }
            let relative = dt + "/" + name
            let folder = models + "/" + relative
            let check = PixArtFolder.check(folder)
            for problem in check.problems { report(.layout, relative, problem) }
            for (component, note) in check.ambiguities { report(.ambiguous, relative + "/" + component, note) }
            guard let dict = try? check.weights["transformer"]?.open(),
                  let summary = try? ModelSummary.summarize(dict, config: config(folder + "/transformer/config.json")),
                  let transformer = summary.transformer
            else { continue }
            let te = try? check.weights["text_encoder"]?.open()
            transformers.append(Transformer(folder: relative, summary: transformer, dict: dict, textEncoder: te))
            if check.problems.isEmpty && check.ambiguities.isEmpty {
                passed.append("\(relative): PixArt diffusers folder complete (transformer depth \(transformer.depth), width \(transformer.width))")
            }
        }

        var motionModules: [(path: String, summary: MotionModuleSummary, dict: any StateDict)] = []
        for file in safetensorsFiles(in: ModelsLayout.motionModule) {
            guard let dict = try? SafetensorsFile(path: models + "/" + file) else { continue }  // reported as invalid
            let kind = ModelKind.detect(dict)
            guard kind == .motionModule else {
                report(.wrongKind, file, "is a \(kind) checkpoint, not a motion module; Motion_Module/ holds motion modules")
                continue
            }
            if let summary = try? ModelSummary.summarize(dict), let mm = summary.motionModule {
                motionModules.append((file, mm, dict))
            }
        }
        var personalized3D = false
        var loras: [String] = []
        for file in safetensorsFiles(in: ModelsLayout.personalizedModel) {
            guard let dict = try? SafetensorsFile(path: models + "/" + file) else { continue }
            let kind = ModelKind.detect(dict)
            switch kind {
            case .kohyaLoRA:
                loras.append(file)
            case .pixartTransformer2D, .easyAnimateTransformer3D:
                personalized3D = personalized3D || kind == .easyAnimateTransformer3D
                guard let summary = try? ModelSummary.summarize(dict), let own = summary.transformer else { continue }
                var fits = !transformers.isEmpty
                for base in transformers where own.depth != base.summary.depth || own.width != base.summary.width {
                    fits = false
                    report(.incompatible, file, "a transformer of depth \(own.depth) and width \(own.width), but \(base.folder) has depth \(base.summary.depth) and width \(base.summary.width)")
                }
                if fits { passed.append("\(file): \(kind) fits the transformer") }
            default:
                report(.wrongKind, file, "is a \(kind) checkpoint; Personalized_Model/ holds personalized transformers and LoRAs")
            }
        }
        if motionModules.isEmpty && !personalized3D {
            report(.layout, ModelsLayout.motionModule + "/", "holds no motion module; add easyanimate_v1_mm.safetensors with `ea-weights prepare --motion-module`")
        }
        for mm in motionModules {
            var fits = !transformers.isEmpty
            for base in transformers {
                let depth = base.summary.depth
                if mm.summary.blockIndices != Array(0..<depth) {
                    fits = false
                    report(.incompatible, mm.path, "has motion modules for \(mm.summary.blocks) transformer blocks but \(base.folder) has \(depth) blocks")
                }
                if mm.summary.channels != base.summary.width {
                    fits = false
                    report(.incompatible, mm.path, "works on \(mm.summary.channels) channels but \(base.folder) is \(base.summary.width) wide")
                }
            }
            if fits { passed.append("\(mm.path): motion module fits the transformer (\(mm.summary.blocks) blocks, \(mm.summary.channels) channels)") }
        }
        for lora in loras {
            checkLoRA(lora, against: transformers, motionModules: motionModules.map(\.dict))
        }
    }

    /// Every module of a LoRA must name a weight of the transformer (with the motion module, for temporal
    /// modules) or of the text encoder, resolved as the merge resolves them, and its update must have that
    /// weight's shape.
    mutating func checkLoRA(_ file: String, against transformers: [Transformer], motionModules: [any StateDict]) {
        let lora: LoRAFile
        do {
            lora = try LoRAFile(path: models + "/" + file)
        } catch {
            report(.invalid, file, "\(error)".replacingOccurrences(of: models + "/" + file + ": ", with: ""))
            return
        }
        var allMatch = !transformers.isEmpty
        for base in transformers {
            var targets: [(LoRATarget, [any StateDict], String)] = [(.transformer, [base.dict] + motionModules, "transformer")]
            if let te = base.textEncoder { targets.append((.textEncoder, [te], "text encoder")) }
            if !lora.modules(for: .textEncoder).isEmpty, base.textEncoder == nil {
                allMatch = false
                report(.loraMismatch, file, "has text encoder modules but \(base.folder) has no readable text encoder")
            }
            for (target, dicts, label) in targets {
                let modules = lora.modules(for: target)
                guard !modules.isEmpty else { continue }
                let map = KeyMap(keys: dicts.flatMap(\.keys))
                var unmatched: [String] = []
                var misfits: [String] = []
                for module in modules {
                    guard let key = map.resolve(module.name, target: target) else {
                        unmatched.append(module.name.name)
                        continue
                    }
                    guard let info = dicts.lazy.compactMap({ $0.info(key) }).first else { continue }
                    if Array(info.shape.prefix(2)) != [module.outFeatures, module.inFeatures] {
                        misfits.append("\(module.name.name): update (\(module.outFeatures), \(module.inFeatures)) vs '\(key)' \(info.shape)")
                    }
                }
                if !unmatched.isEmpty {
                    allMatch = false
                    let example = unmatched.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
                    let hint = target == .transformer && motionModules.isEmpty && unmatched.contains { $0.contains("temporal") }
                        ? " (no motion module is installed)" : ""
                    report(.loraMismatch, file, "\(unmatched.count) of \(modules.count) \(label) modules match no weight of \(base.folder)'s \(label)\(hint) (e.g. \(example))")
                }
                if !misfits.isEmpty {
                    allMatch = false
                    report(.loraMismatch, file, "\(misfits.count) \(label) modules do not fit their weight's shape (e.g. \(misfits[0]))")
                }
            }
        }
        if allMatch { passed.append("\(file): all \(lora.modules.count) LoRA modules match the transformer and text encoder") }
    }

    func safetensorsFiles(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: models + "/" + folder)) ?? [])
            .filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }

    func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    func config(_ path: String) -> JSONValue? {
        SmallFile.contents(atPath: path).flatMap { try? JSONParser.parse($0) }
    }
}
