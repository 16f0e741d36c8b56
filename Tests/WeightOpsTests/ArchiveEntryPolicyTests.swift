import Testing
@testable import WeightOps
import TestSupport

/// The name-only rules, entry by entry, without touching a disk.
@Suite("Archive entry policy")
struct ArchiveEntryPolicyTests {
    @Test("normalises './' and '//' and finds the top-level folder")
    func normalises() throws {
        var policy = ArchiveEntryPolicy(archive: "a.tar")
        #expect(try policy.admit(name: "./", type: .directory) == .root(top: false))
        #expect(try policy.admit(name: ".//m/", type: .directory) == .root(top: true))
        #expect(try policy.admit(name: "m//x/./y.txt", type: .file) == .file(path: "x/y.txt", createParents: ["x"]))
        #expect(try policy.admit(name: "m/x/", type: .directory) == .directory(path: "x", create: []))
        #expect(policy.topName == "m")
        #expect(policy.fileCount == 1)
    }

    @Test("symbolic link targets: relative, leading '..' only, never above the folder", arguments: [
        ("m/a", "b", true), ("m/d/a", "../b", true), ("m/d/e/a", "../../b/c", true), ("m/a", ".", true),
        ("m/a", "..", false), ("m/d/a", "../../b", false), ("m/a", "d/../b", false), ("m/a", "/b", false),
        ("m/a", "", false), ("m/d/a", "./../x", true),
    ])
    func symlinkTargets(_ name: String, _ target: String, _ allowed: Bool) throws {
        var policy = ArchiveEntryPolicy(archive: "a.tar")
        let result = Result { try policy.admit(name: name, type: .symlink(target: target)) }
        if allowed {
            #expect(throws: Never.self) { try result.get() }
        } else {
            #expect(throws: ArchiveError.self) { try result.get() }
        }
    }

    @Test("a directory entry may follow the files that implied it, once")
    func implicitThenExplicit() throws {
        var policy = ArchiveEntryPolicy(archive: "a.tar")
        _ = try policy.admit(name: "m/x/y", type: .file)
        #expect(try policy.admit(name: "m/x", type: .directory) == .directory(path: "x", create: []))
        #expect(throws: ArchiveError.duplicateEntry(path: "a.tar", entry: "m/x/")) {
            try policy.admit(name: "m/x/", type: .directory)
        }
    }

    @Test("hard links only to regular files admitted before, never to folders or links")
    func hardlinks() throws {
        var policy = ArchiveEntryPolicy(archive: "a.tar")
        _ = try policy.admit(name: "m/f", type: .file)
        _ = try policy.admit(name: "m/l", type: .symlink(target: "f"))
        _ = try policy.admit(name: "m/d/", type: .directory)
        #expect(try policy.admit(name: "m/h", type: .hardlink(target: "m/f")) == .hardlink(path: "h", target: "f", createParents: []))
        #expect(throws: ArchiveError.self) { try policy.admit(name: "m/h2", type: .hardlink(target: "m/l")) }
        #expect(throws: ArchiveError.self) { try policy.admit(name: "m/h3", type: .hardlink(target: "m/d")) }
        #expect(throws: ArchiveError.self) { try policy.admit(name: "m/h4", type: .hardlink(target: "m/../m/f")) }
    }
}
