/// The kind of an archive entry, as the tar header declares it.
enum ArchiveEntryType: Equatable, Sendable {
    case file
    case directory
    case symlink(target: String)
    case hardlink(target: String)
    /// Devices, FIFOs, sockets, sparse files and anything else a model archive never needs.
    case unsupported(String)
}

/// What extracting one admitted entry does, with paths relative to the model folder (never empty except for the
/// folder itself, never containing `.`, `..` or empty components).
enum ArchiveEntryAction: Equatable, Sendable {
    /// The top-level folder itself (`top`), or `./`: nothing to create.
    case root(top: Bool)
    /// Create the folders in `create` (missing parents first, then the entry itself unless an earlier entry
    /// already implied it).
    case directory(path: String, create: [String])
    case file(path: String, createParents: [String])
    case symlink(path: String, target: String, createParents: [String])
    case hardlink(path: String, target: String, createParents: [String])
}

/// Decides, entry by entry and before anything touches the disk, whether an archive entry may be extracted into
/// the model folder. Everything is judged on names alone, relative to the final folder: an entry must stay
/// inside it (no absolute names, no `..`), may not pass through or replace a symbolic link or a file another
/// entry created, may appear only once, and links must point inside it. Because every path component of every
/// entry is known here, the extractor never follows a link the archive made.
struct ArchiveEntryPolicy {
    private enum Node {
        case implicitDirectory
        case directory
        case file
        case symlink
    }

    let archive: String
    private(set) var topName: String?
    private var nodes: [String: Node] = [:]
    private var rootListed = false
    private(set) var fileCount = 0

    init(archive: String) {
        self.archive = archive
    }

    /// Admits one entry named `name` in the archive, or throws the reason it must not be extracted.
    mutating func admit(name: String, type: ArchiveEntryType) throws -> ArchiveEntryAction {
        let components = try Self.components(of: name, archive: archive, entry: name)
        if case let .unsupported(what) = type {
            throw ArchiveError.unsupportedEntryType(path: archive, entry: name, type: what)
        }
        guard let top = components.first else {
            // `./` (archives made with `tar -C dir .`): the folder that holds the top-level folder.
            guard type == .directory else {
                throw ArchiveError.unsafeEntry(path: archive, entry: name, reason: "its name is empty or '.'")
            }
            return .root(top: false)
        }
        if let topName, topName != top {
            throw ArchiveError.layout(path: archive, reason: "it holds both '\(topName)' and '\(top)' at the top level")
        }
        topName = top
        let relative = Array(components.dropFirst())
        if relative.isEmpty {
            guard type == .directory else {
                throw ArchiveError.layout(path: archive, reason: "'\(name)' is a file at the top level, not a folder")
            }
            if rootListed { throw ArchiveError.duplicateEntry(path: archive, entry: name) }
            rootListed = true
            return .root(top: true)
        }
        var parents: [String] = []
        var prefix = ""
        for component in relative.dropLast() {
            prefix = prefix.isEmpty ? component : prefix + "/" + component
            switch nodes[prefix] {
            case nil:
                nodes[prefix] = .implicitDirectory
                parents.append(prefix)
            case .implicitDirectory?, .directory?:
                break
            case .symlink?:
                throw ArchiveError.unsafeEntry(
                    path: archive, entry: name, reason: "it would be written through the symbolic link '\(top)/\(prefix)'")
            case .file?:
                throw ArchiveError.notAFolder(path: archive, entry: name, blocker: "\(top)/\(prefix)")
            }
        }
        let path = relative.joined(separator: "/")
        let existing = nodes[path]

        switch type {
        case .directory:
            switch existing {
            case nil:
                nodes[path] = .directory
                return .directory(path: path, create: parents + [path])
            case .implicitDirectory?:
                nodes[path] = .directory
                return .directory(path: path, create: parents)
            default:
                throw ArchiveError.duplicateEntry(path: archive, entry: name)
            }
        case .file:
            guard existing == nil else { throw ArchiveError.duplicateEntry(path: archive, entry: name) }
            nodes[path] = .file
            fileCount += 1
            return .file(path: path, createParents: parents)
        case let .symlink(target):
            guard existing == nil else { throw ArchiveError.duplicateEntry(path: archive, entry: name) }
            try checkSymlink(target: target, at: relative, entry: name)
            nodes[path] = .symlink
            return .symlink(path: path, target: target, createParents: parents)
        case let .hardlink(target):
            guard existing == nil else { throw ArchiveError.duplicateEntry(path: archive, entry: name) }
            let outside = ArchiveError.unsafeEntry(
                path: archive, entry: name, reason: "it is a hard link to '\(target)', outside the model folder")
            guard let targetComponents = try? Self.components(of: target, archive: archive, entry: name),
                  targetComponents.first == top
            else { throw outside }
            let targetPath = targetComponents.dropFirst().joined(separator: "/")
            guard !targetPath.isEmpty, nodes[targetPath] == .file else {
                throw ArchiveError.unsafeEntry(
                    path: archive, entry: name,
                    reason: "it is a hard link to '\(target)', which is not a regular file extracted before it")
            }
            nodes[path] = .file
            fileCount += 1
            return .hardlink(path: path, target: targetPath, createParents: parents)
        case .unsupported:
            throw ArchiveError.unsupportedEntryType(path: archive, entry: name, type: "such entries")
        }
    }

    /// A symbolic link may only point inside the model folder, judged where the folder will finally live: the
    /// target is relative, its `..` components all come first (after a link component, `..` would climb from
    /// wherever that link points) and never climb above the folder itself.
    private func checkSymlink(target: String, at relative: [String], entry: String) throws {
        func refuse(_ why: String) -> ArchiveError {
            ArchiveError.unsafeEntry(path: archive, entry: entry, reason: "it is a symbolic link to '\(target)', \(why)")
        }
        guard !target.isEmpty else { throw refuse("an empty target") }
        guard !target.hasPrefix("/") else { throw refuse("an absolute path outside the model folder") }
        guard !target.utf8.contains(0) else { throw refuse("a name with a NUL byte") }
        var depth = relative.count - 1  // folders between the model folder and the link
        var climbing = true
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".":
                continue
            case "..":
                guard climbing else { throw refuse("with '..' after a folder name") }
                depth -= 1
                if depth < 0 { throw refuse("outside the model folder") }
            default:
                climbing = false
            }
        }
    }

    /// The path components of an archive name with `.` and empty components removed; absolute names and `..`
    /// are refused.
    static func components(of name: String, archive: String, entry: String) throws -> [String] {
        guard !name.utf8.contains(0) else {
            throw ArchiveError.unsafeEntry(path: archive, entry: entry, reason: "its name contains a NUL byte")
        }
        guard !name.hasPrefix("/") else {
            throw ArchiveError.unsafeEntry(path: archive, entry: entry, reason: "it has an absolute path")
        }
        var components: [String] = []
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                throw ArchiveError.unsafeEntry(path: archive, entry: entry, reason: "its path contains '..'")
            }
            components.append(String(component))
        }
        return components
    }
}
