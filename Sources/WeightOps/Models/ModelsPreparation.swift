#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Safetensors

/// How `prepare` puts a file into the models tree.
public enum Placement: String, Sendable, Codable, CaseIterable {
    /// A hard link (no copy, no extra space); falls back to a copy across filesystems.
    case link
    case copy
    /// Rename (falls back to copy + delete across filesystems).
    case move
}

/// What `prepare` is asked to place.
public struct PrepareRequest: Sendable {
    public var models: String
    /// PixArt-XL-2-512x512.tar (any supported compression) or an unpacked diffusers folder.
    public var pixart: String?
    public var motionModules: [String] = []
    public var personalized: [String] = []
    public var loras: [String] = []
    public var placement: Placement = .link
    /// Written into the manifest.
    public var toolVersion: String
    public var progress: @Sendable (String, Int64?) -> TerminalProgress = { _, _ in .silent }
    public var isCancelled: @Sendable () -> Bool = { Interruption.isRequested }

    public init(models: String, toolVersion: String) {
        self.models = models
        self.toolVersion = toolVersion
    }
}

/// What `prepare` did.
public struct PrepareReport: Sendable, Codable {
    public enum Action: String, Sendable, Codable {
        case extracted, linked, copied, moved, unchanged
    }

    public struct Item: Sendable, Codable {
        /// Relative to the models folder.
        public let path: String
        public let source: String
        public let kind: String
        public let action: Action
        public let files: Int
        public let bytes: Int64
        /// Why the action differs from the one asked for (e.g. a copy across filesystems).
        public let note: String?
    }

    public let models: String
    public let items: [Item]
    public let manifestWritten: Bool
    /// False when nothing at all changed (a repeated run).
    public var changed: Bool { manifestWritten || items.contains { $0.action != .unchanged } }
}

public enum ModelsPreparation {
    /// Builds or completes the `models/` tree: extracts or places the PixArt folder under
    /// `Diffusion_Transformer/`, the motion module under `Motion_Module/`, personalized models and LoRAs under
    /// `Personalized_Model/`, after checking every input is the kind its option says. Idempotent: inputs already
    /// in place are left alone. Writes `manifest.json` with every placed file's kind, size and SHA-256 (hashes
    /// come from the copy or extraction pass; a hard link or rename reads the file once).
    public static func prepare(_ request: PrepareRequest) throws -> PrepareReport {
        let models = request.models
        let plans = try plan(request)
        try FolderCreation.createDirectories(models)
        let claim = try FolderLock(models)
        defer { withExtendedLifetime(claim) {} }
        for folder in ModelsLayout.folders { try FolderCreation.createDirectories(models + "/" + folder) }
        var manifest = try Manifest.read(models: models)
        let before = manifest
        var entries: [String: Manifest.Entry] = [:]
        for entry in manifest?.files ?? [] { entries[entry.path] = entry }

        var items: [PrepareReport.Item] = []
        for plan in plans {
            if request.isCancelled() { throw ModelsError.cancelled(path: plan.source) }
            let (item, placed) = try execute(plan, request: request, recorded: entries)
            for entry in placed { entries[entry.path] = entry }
            items.append(item)
        }
        manifest = Manifest(eaWeightsVersion: request.toolVersion, files: Array(entries.values))
        var written = false
        if let manifest, manifest.files != before?.files || before?.eaWeightsVersion != manifest.eaWeightsVersion
            || before?.format != manifest.format {
            try manifest.write(models: models)
            written = true
        }
        return PrepareReport(models: models, items: items, manifestWritten: written)
    }

    // MARK: planning: every input checked before anything is touched

    enum Source: Equatable {
        case archive
        case folder
        case file
    }

    struct Plan {
        let option: String
        let source: String
        let kind: Source
        /// Relative to models/.
        let destination: String
        let expectedKind: String
        /// When the source is gone because an earlier `--move` already placed it.
        let alreadyMoved: Bool
    }

    static func plan(_ request: PrepareRequest) throws -> [Plan] {
        let models = request.models
        guard request.pixart != nil || !request.motionModules.isEmpty || !request.personalized.isEmpty
            || !request.loras.isEmpty
        else {
            throw ModelsError.invalidRequest(
                reason: "nothing to prepare: give --pixart, --motion-module, --personalized or --lora")
        }
        var plans: [Plan] = []
        if let pixart = request.pixart {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: pixart, isDirectory: &isDirectory) else {
                throw ModelsError.notFound(path: pixart, what: "archive or folder (--pixart)")
            }
            if isDirectory.boolValue {
                let name = (URL(fileURLWithPath: pixart).standardizedFileURL.path as NSString).lastPathComponent
                let problems = PixArtFolder.problems(at: pixart)
                guard problems.isEmpty else {
                    throw ModelsError.invalidWeights(path: pixart, reason: "not a PixArt diffusers folder: " + problems.joined(separator: "; "))
                }
                plans.append(Plan(option: "--pixart", source: pixart, kind: .folder,
                                  destination: ModelsLayout.diffusionTransformer + "/" + name,
                                  expectedKind: "pixart-diffusers-folder", alreadyMoved: false))
            } else {
                let name = try ArchiveExtraction.topLevelName(of: pixart)
                plans.append(Plan(option: "--pixart", source: pixart, kind: .archive,
                                  destination: ModelsLayout.diffusionTransformer + "/" + name,
                                  expectedKind: "pixart-diffusers-folder", alreadyMoved: false))
            }
        }
        let files: [(String, [String], String, [ModelKind], String)] = [
            ("--motion-module", request.motionModules, ModelsLayout.motionModule, [.motionModule],
             "motion module (motion-module)"),
            ("--personalized", request.personalized, ModelsLayout.personalizedModel,
             [.pixartTransformer2D, .easyAnimateTransformer3D],
             "personalized transformer (pixart-transformer-2d or easyanimate-transformer-3d)"),
            ("--lora", request.loras, ModelsLayout.personalizedModel, [.kohyaLoRA], "LoRA (kohya-lora)"),
        ]
        for (option, paths, folder, kinds, expected) in files {
            for path in paths {
                let destination = folder + "/" + (path as NSString).lastPathComponent
                if !FileManager.default.fileExists(atPath: path) {
                    // An earlier `prepare --move` took the file; it is in place if the manifest says so.
                    if request.placement == .move, FileManager.default.fileExists(atPath: models + "/" + destination),
                       (try? Manifest.read(models: models))??.entry(destination) != nil {
                        plans.append(Plan(option: option, source: path, kind: .file, destination: destination,
                                          expectedKind: kinds[0].rawValue, alreadyMoved: true))
                        continue
                    }
                    throw ModelsError.notFound(path: path, what: "file (\(option))")
                }
                let actual = try detectKind(path)
                guard kinds.contains(actual) else {
                    throw ModelsError.wrongKind(path: path, option: option, expected: expected, actual: actual.rawValue)
                }
                plans.append(Plan(option: option, source: path, kind: .file, destination: destination,
                                  expectedKind: actual.rawValue, alreadyMoved: false))
            }
        }
        var seen: [String: String] = [:]
        for plan in plans {
            if let other = seen[plan.destination] {
                throw ModelsError.conflict(
                    path: plan.source, reason: "and \(other) would both become \(plan.destination); rename one of them")
            }
            seen[plan.destination] = plan.source
        }
        return plans
    }

    static func detectKind(_ path: String) throws -> ModelKind {
        do {
            return ModelKind.detect(try SafetensorsFile(path: path))
        } catch let error as SafetensorsError {
            throw ModelsError.invalidWeights(path: path, reason: "not a valid safetensors file: \(error)")
        }
    }

    // MARK: execution

    private static func execute(
        _ plan: Plan, request: PrepareRequest, recorded: [String: Manifest.Entry]
    ) throws -> (PrepareReport.Item, [Manifest.Entry]) {
        let models = request.models
        let target = models + "/" + plan.destination
        var st = stat()
        let exists = lstat(target, &st) == 0

        switch plan.kind {
        case .archive, .folder:
            if exists {
                let inside = recorded.values.filter { $0.path.hasPrefix(plan.destination + "/") }
                guard !inside.isEmpty else {
                    throw ModelsError.conflict(
                        path: target, reason: "already exists but is not in manifest.json; remove it or move it aside first")
                }
                return (item(plan, .unchanged, inside, note: nil), inside)
            }
            if plan.kind == .archive {
                var options = ArchiveExtractionOptions()
                options.progress = request.progress("extracting \((plan.source as NSString).lastPathComponent)", nil)
                options.isCancelled = request.isCancelled
                let result = try ArchiveExtraction.extract(
                    archive: plan.source, into: models + "/" + ModelsLayout.diffusionTransformer, options: options)
                let kinds = FileKinds.ofFolder(result.folder, files: result.files.map(\.path))
                let entries = result.files.map {
                    Manifest.Entry(path: plan.destination + "/" + $0.path, kind: kinds[$0.path] ?? "other",
                                   size: $0.digest.size, sha256: $0.digest.sha256)
                }
                return (item(plan, .extracted, entries, note: layoutNote(result.folder, nil)), entries)
            }
            let (action, digests, note) = try FolderPlacement.place(
                folder: plan.source, at: target, placement: request.placement, request: request)
            let kinds = FileKinds.ofFolder(target, files: digests.map(\.path))
            let entries = digests.map {
                Manifest.Entry(path: plan.destination + "/" + $0.path, kind: kinds[$0.path] ?? "other",
                               size: $0.digest.size, sha256: $0.digest.sha256)
            }
            return (item(plan, action, entries, note: layoutNote(target, note)), entries)

        case .file:
            if exists {
                if let entry = try unchangedFile(plan, target: target, recorded: recorded, request: request) {
                    return (item(plan, .unchanged, [entry], note: nil), [entry])
                }
                throw ModelsError.conflict(
                    path: target, reason: "already exists and differs from \(plan.source); remove it or rename the input")
            }
            let (action, digest, note) = try FilePlacement.place(
                file: plan.source, at: target, placement: request.placement, request: request)
            let entry = Manifest.Entry(path: plan.destination, kind: plan.expectedKind, size: digest.size, sha256: digest.sha256)
            return (item(plan, action, [entry], note: note), [entry])
        }
    }

    /// `note` with what the placed PixArt folder holds that loaders disagree on (verify reports it as `ambiguous`).
    private static func layoutNote(_ folder: String, _ note: String?) -> String? {
        let notes = (note.map { [$0] } ?? []) + PixArtFolder.check(folder).ambiguities.map { "\($0.component)/ \($0.note)" }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }

    /// The manifest entry of a file already in place: the same inode as the source (a hard link), or the same
    /// size and modification time as the source (a copy this tool made), or the source already moved here.
    private static func unchangedFile(
        _ plan: Plan, target: String, recorded: [String: Manifest.Entry], request: PrepareRequest
    ) throws -> Manifest.Entry? {
        var placed = stat()
        guard stat(target, &placed) == 0 else { return nil }
        let recordedEntry = recorded[plan.destination].flatMap { $0.size == Int64(placed.st_size) ? $0 : nil }
        if plan.alreadyMoved { return recordedEntry }
        var source = stat()
        guard stat(plan.source, &source) == 0 else { return nil }
        let sameFile = source.st_dev == placed.st_dev && source.st_ino == placed.st_ino
        let sameCopy = source.st_size == placed.st_size && source.st_mtim.tv_sec == placed.st_mtim.tv_sec
            && source.st_mtim.tv_nsec == placed.st_mtim.tv_nsec
        guard sameFile || sameCopy else { return nil }
        if let recordedEntry { return recordedEntry }
        // In place but not recorded (manifest removed): hash it now.
        let digest = try FileDigest.compute(path: target, isCancelled: request.isCancelled)
        return Manifest.Entry(path: plan.destination, kind: plan.expectedKind, size: digest.size, sha256: digest.sha256)
    }

    private static func item(
        _ plan: Plan, _ action: PrepareReport.Action, _ entries: [Manifest.Entry], note: String?
    ) -> PrepareReport.Item {
        PrepareReport.Item(
            path: plan.destination, source: plan.source, kind: plan.expectedKind, action: action, files: entries.count,
            bytes: entries.reduce(0) { $0 + $1.size }, note: note)
    }
}

/// Putting one file in place with a hard link, a copy or a move, and its SHA-256 from that same pass.
enum FilePlacement {
    static func place(
        file source: String, at target: String, placement: Placement, request: PrepareRequest
    ) throws -> (PrepareReport.Action, FileDigest, String?) {
        switch placement {
        case .link:
            if link(source, target) == 0 {
                return (.linked, try hash(target, request: request), nil)
            }
            guard errno == EXDEV || errno == EPERM || errno == EMLINK else {
                throw ModelsError.writeFailed(path: target, reason: "cannot hard-link \(source): \(String(cString: strerror(errno)))")
            }
            let digest = try copy(source, to: target, request: request)
            return (.copied, digest, "copied: \(source) is on another filesystem (or does not allow hard links)")
        case .copy:
            return (.copied, try copy(source, to: target, request: request), nil)
        case .move:
            if rename(source, target) == 0 {
                return (.moved, try hash(target, request: request), nil)
            }
            guard errno == EXDEV else {
                throw ModelsError.writeFailed(path: target, reason: "cannot move \(source): \(String(cString: strerror(errno)))")
            }
            let digest = try copy(source, to: target, request: request)
            guard unlink(source) == 0 else {
                throw ModelsError.writeFailed(path: source, reason: "copied to \(target) but cannot remove it: \(String(cString: strerror(errno)))")
            }
            return (.moved, digest, "copied then deleted: \(source) is on another filesystem")
        }
    }

    static func hash(_ path: String, request: PrepareRequest) throws -> FileDigest {
        let size = fileSize(path)
        let progress = request.progress("hashing \((path as NSString).lastPathComponent)", size)
        defer { progress.finish() }
        var done: Int64 = 0
        return try FileDigest.compute(path: path, progress: { n in
            done += n
            progress.update(done)
        }, isCancelled: request.isCancelled)
    }

    /// Copies `source` to a temporary name beside `target`, hashing as it writes, keeps the modification time
    /// (so a later run recognises the copy), flushes and renames it into place.
    static func copy(_ source: String, to target: String, request: PrepareRequest) throws -> FileDigest {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ModelsError.cannotRead(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw ModelsError.cannotRead(path: source, reason: String(cString: strerror(errno))) }
        _ = posix_fadvise(input, 0, 0, POSIX_FADV_SEQUENTIAL)
        let progress = request.progress("copying \((source as NSString).lastPathComponent)", Int64(st.st_size))
        defer { progress.finish() }
        return try AtomicOutput.writeFile(to: target) { temporary in
            let writer = try HashingFileWriter(path: temporary, mode: mode_t(st.st_mode & 0o755) | 0o600)
            let blockSize = 4 << 20
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 4096)
            defer { buffer.deallocate() }
            while true {
                if request.isCancelled() { throw ModelsError.cancelled(path: target) }
                let n = read(input, buffer.baseAddress, blockSize)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ModelsError.cannotRead(path: source, reason: String(cString: strerror(errno)))
                }
                if n == 0 { break }
                try writer.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                progress.update(writer.size)
            }
            writer.setModificationTime(seconds: st.st_mtim.tv_sec, nanoseconds: st.st_mtim.tv_nsec)
            return try writer.finish()
        }
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
}

/// Putting an unpacked PixArt folder in place: every file linked or copied into a staging folder that is renamed
/// into place at the end (links inside the source, such as a Hugging Face cache snapshot's, are followed), or the
/// whole folder renamed for `--move`.
enum FolderPlacement {
    static func place(
        folder source: String, at target: String, placement: Placement, request: PrepareRequest
    ) throws -> (PrepareReport.Action, [ExtractedFile], String?) {
        let files = try regularFiles(in: source)
        // Everything is validated before anything is placed.
        for file in files where ComponentWeights.isWeightsFile(file) {
            do {
                _ = try openStateDict(path: source + "/" + file)
            } catch {
                throw ModelsError.invalidWeights(path: source + "/" + file, reason: "\(error)")
            }
        }
        let parent = (target as NSString).deletingLastPathComponent
        if placement == .move, !containsSymlinks(source), rename(source, target) == 0 {
            let digests = try files.map { ExtractedFile(path: $0, digest: try FilePlacement.hash(target + "/" + $0, request: request)) }
            return (.moved, digests, nil)
        }
        let staging = try AtomicOutput.Folder(in: parent, for: (target as NSString).lastPathComponent)
        var digests: [ExtractedFile] = []
        var copiedAny = false
        var linkedAny = false
        var folders: [String] = []
        for file in files {
            if request.isCancelled() { throw ModelsError.cancelled(path: target) }
            let components = file.split(separator: "/").dropLast()
            var prefix = ""
            for component in components {
                prefix = prefix.isEmpty ? String(component) : prefix + "/" + component
                if !folders.contains(prefix) {
                    try FolderCreation.createDirectories(staging.path + "/" + prefix)
                    folders.append(prefix)
                }
            }
            let from = resolved(source + "/" + file)
            let to = staging.path + "/" + file
            let useLink = placement == .link
            let (action, digest, _) = try FilePlacement.place(
                file: from, at: to, placement: useLink ? .link : .copy, request: request)
            if action == .linked { linkedAny = true } else { copiedAny = true }
            digests.append(ExtractedFile(path: file, digest: digest))
        }
        try staging.commit(to: target, flushing: folders)
        if placement == .move {
            AtomicOutput.removeTree(source)
            return (.moved, digests, "copied then deleted (another filesystem, or the folder holds links)")
        }
        let action: PrepareReport.Action = linkedAny && !copiedAny ? .linked : .copied
        let note = placement == .link && copiedAny ? "copied: the source is on another filesystem" : nil
        return (action, digests, note)
    }

    /// Regular files (following links) under `folder`, relative, sorted; hidden files are skipped.
    static func regularFiles(in folder: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else {
            throw ModelsError.cannotRead(path: folder, reason: "cannot list the folder")
        }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") {
                enumerator.skipDescendants()
                continue
            }
            var st = stat()
            guard stat(folder + "/" + relative, &st) == 0 else {
                throw ModelsError.cannotRead(path: folder + "/" + relative, reason: "a broken link")
            }
            if (st.st_mode & S_IFMT) == S_IFREG { files.append(relative) }
        }
        return files.sorted()
    }

    static func containsSymlinks(_ folder: String) -> Bool {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return true }
        while let relative = enumerator.nextObject() as? String {
            var st = stat()
            if lstat(folder + "/" + relative, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK { return true }
        }
        return false
    }

    private static func resolved(_ path: String) -> String {
        (path as NSString).resolvingSymlinksInPath
    }
}
