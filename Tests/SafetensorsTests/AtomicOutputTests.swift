import Foundation
import Testing
@testable import Safetensors

/// A fresh folder under /tmp, removed at the end of the test.
private final class Scratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "ea-atomic-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }
    deinit { AtomicOutput.removeTree(path) }
    func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
    func read(_ name: String) throws -> String { try String(contentsOfFile: path + "/" + name, encoding: .utf8) }
}

private struct Planned: Error {}

@Suite("Atomic output")
struct AtomicOutputTests {
    @Test("a file appears only complete, replacing the old one; its temporary name is hidden and carries the pid")
    func fileReplacesAtomically() throws {
        let box = try Scratch()
        try AtomicOutput.writeFile(Array("old".utf8), to: box.path + "/out.txt")
        var seenTemporary = ""
        try AtomicOutput.writeFile(to: box.path + "/out.txt") { temporary in
            seenTemporary = (temporary as NSString).lastPathComponent
            #expect(try box.read("out.txt") == "old", "the old file stays until the new one is complete")
            try "new".write(toFile: temporary, atomically: false, encoding: .utf8)
        }
        #expect(try box.read("out.txt") == "new")
        #expect(try box.names() == ["out.txt"])
        #expect(AtomicOutput.isTemporaryName(seenTemporary))
        #expect(seenTemporary.hasPrefix(AtomicOutput.temporaryPrefix + "\(getpid())-"))
        #expect(seenTemporary.hasSuffix("-out.txt"))
    }

    @Test("an error while writing a file leaves the old file and no temporary file")
    func failedFileLeavesNothing() throws {
        let box = try Scratch()
        try AtomicOutput.writeFile(Array("old".utf8), to: box.path + "/out.txt")
        #expect(throws: Planned.self) {
            try AtomicOutput.writeFile(to: box.path + "/out.txt") { temporary in
                try "half".write(toFile: temporary, atomically: false, encoding: .utf8)
                throw Planned()
            }
        }
        #expect(try box.names() == ["out.txt"])
        #expect(try box.read("out.txt") == "old")
    }

    @Test("a file output is refused where its folder is missing or a folder has its name")
    func fileNeedsAFolderAndNoFolderInTheWay() throws {
        let box = try Scratch()
        let missing = box.path + "/nowhere/out.txt"
        #expect(throws: SafetensorsError.writeFailed(path: missing, reason: "folder '\(box.path)/nowhere' does not exist")) {
            try AtomicOutput.writeFile([1], to: missing)
        }
        try FileManager.default.createDirectory(atPath: box.path + "/taken", withIntermediateDirectories: false)
        #expect(throws: SafetensorsError.writeFailed(path: box.path + "/taken", reason: "a folder of that name exists")) {
            try AtomicOutput.writeFile([1], to: box.path + "/taken")
        }
        #expect(try box.names() == ["taken"])
    }

    @Test("a folder is renamed into place whole, or removed with its contents when not committed")
    func folderCommitsWholeOrNotAtAll() throws {
        let box = try Scratch()
        do {
            let folder = try AtomicOutput.Folder(in: box.path, for: "model")
            try folder.write(Array("a".utf8), named: "a.json")
            #expect(try box.names().count == 1 && AtomicOutput.isTemporaryName(try box.names()[0]))
        }
        #expect(try box.names().isEmpty, "an uncommitted folder is removed")

        let folder = try AtomicOutput.Folder(in: box.path, for: "model")
        try folder.write(Array("a".utf8), named: "a.json")
        try FileManager.default.createDirectory(atPath: folder.path + "/sub", withIntermediateDirectories: false)
        try folder.write(Array("b".utf8), named: "sub/b.json")
        try folder.commit(to: box.path + "/model", flushing: ["sub"])
        #expect(try box.names() == ["model"])
        #expect(try box.read("model/sub/b.json") == "b")
        #expect(throws: SafetensorsError.destinationExists(path: box.path + "/model")) {
            try AtomicOutput.Folder(in: box.path, for: "model").commit(to: box.path + "/model")
        }
        #expect(try box.names() == ["model"])
    }

    @Test("committing into an existing folder replaces the set's files and removes its stale ones, nothing else")
    func folderCommitIntoExistingRemovesStaleFiles() throws {
        let box = try Scratch()
        try FileManager.default.createDirectory(atPath: box.path + "/frames", withIntermediateDirectories: false)
        for name in ["frame_0000.png", "frame_0001.png", "frame_0002.png", "notes.txt"] {
            try AtomicOutput.writeFile(Array("old".utf8), to: box.path + "/frames/" + name)
        }
        let folder = try AtomicOutput.Folder(in: box.path, for: "frames")
        try folder.write(Array("new".utf8), named: "frame_0000.png")
        try folder.write(Array("new".utf8), named: "frame_0001.png")
        try folder.commit(into: box.path + "/frames", removingStale: { $0.hasPrefix("frame_") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path + "/frames").sorted()
                == ["frame_0000.png", "frame_0001.png", "notes.txt"])
        #expect(try box.read("frames/frame_0001.png") == "new")
        #expect(try box.read("frames/notes.txt") == "old")
        #expect(try box.names() == ["frames"], "the temporary folder is gone")
    }

    @Test("leftovers of a process that no longer exists are removed; this process's and other names are kept")
    func removesAbandonedLeftovers() throws {
        let box = try Scratch()
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let dead = "\(AtomicOutput.temporaryPrefix)4194305-abc-model"
        let mine = "\(AtomicOutput.temporaryPrefix)\(getpid())-abc-model"
        for name in [dead, mine] {
            try FileManager.default.createDirectory(atPath: box.path + "/" + name + "/inner", withIntermediateDirectories: true)
        }
        try AtomicOutput.writeFile([1], to: box.path + "/keep.txt")
        #expect(AtomicOutput.removeAbandoned(in: box.path) == [dead])
        #expect(try box.names() == [mine, "keep.txt"].sorted())
    }

    @Test("temporary outputs are registered for interrupts while written, and unregistered once settled")
    func temporaryOutputsAreRegisteredWhileWritten() throws {
        let box = try Scratch()
        let folder = try AtomicOutput.Folder(in: box.path, for: "model")
        let file = try AtomicOutput.File(destination: box.path + "/single.safetensors")
        #expect(TemporaryFiles.registered.isSuperset(of: [folder.path, file.temporaryPath]))
        try folder.commit(to: box.path + "/model")
        file.discard()
        #expect(TemporaryFiles.registered.isDisjoint(with: [folder.path, file.temporaryPath]))
        #expect(try box.names() == ["model"])
    }
}
