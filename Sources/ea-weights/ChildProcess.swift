import Bench
import Foundation

/// One finished child process of a bench: its exit status, standard output, wall and CPU time, and its own
/// peak resident memory.
struct ChildRun {
    var status: Int32
    var output: Data
    var seconds: Double
    var cpuSeconds: Double
    /// The child's VmHWM as it reported it (ea-weights children only; nil for others).
    var peakRSSBytes: Int?

    /// The peak memory of an ea-weights child (`command`) that succeeded; otherwise why it did not.
    func succeededPeak(_ command: String) throws -> Int {
        guard status == 0 else { throw BenchError.failed(path: command, reason: "the child process failed with status \(status)") }
        guard let peakRSSBytes else {
            throw BenchError.failed(path: command, reason: "the child process did not report its peak memory (no /proc/self/status?)")
        }
        return peakRSSBytes
    }
}

/// How the benches run ea-weights (and Python) as a user runs them, in a process of its own.
///
/// The child's peak memory cannot be taken from `getrusage(RUSAGE_CHILDREN)`: posix_spawn shares the bench's
/// memory until the child's exec, and Linux records that shared peak as the child's at exec, so the bench's own
/// high-water mark (hundreds of MB after synthesizing) would be reported for every child. An ea-weights child
/// given `peakFileVariable` writes its own VmHWM to that file as it exits instead.
enum ChildProcess {
    static let peakFileVariable = "EA_WEIGHTS_PEAK_RSS_FILE"

    /// Runs `executable` to its end. `reportsPeak`: the child is ea-weights and reports its peak memory.
    static func run(_ executable: String, _ arguments: [String], reportsPeak: Bool = false) throws -> ChildRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let peakFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("ea-weights-peak-\(getpid())-\(UUID().uuidString)").path
        if reportsPeak {
            var environment = ProcessInfo.processInfo.environment
            environment[peakFileVariable] = peakFile
            process.environment = environment
        }
        defer { if reportsPeak { try? FileManager.default.removeItem(atPath: peakFile) } }
        let pipe = Pipe()
        process.standardOutput = pipe
        let cpuBefore = childrenCPUSeconds()
        let start = Date()
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        let peak = reportsPeak ? (try? String(contentsOfFile: peakFile, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        } : nil
        return ChildRun(status: process.terminationStatus, output: data, seconds: seconds,
                        cpuSeconds: childrenCPUSeconds() - cpuBefore, peakRSSBytes: peak)
    }

    /// This executable, to run ea-weights subcommands as children.
    static func ownExecutable() throws -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        if let path = Bundle.main.executablePath { return path }
        throw BenchError.failed(path: "/proc/self/exe", reason: "cannot find the ea-weights executable to run as a child")
    }

    /// Called first in `main`: when the bench asked for it, write this process's peak memory as it exits.
    static func reportPeakAtExitIfAsked() {
        guard ProcessInfo.processInfo.environment[peakFileVariable] != nil else { return }
        atexit {
            guard let path = ProcessInfo.processInfo.environment[ChildProcess.peakFileVariable],
                  let peak = MergeBenchmark.peakResidentBytes() else { return }
            try? Data("\(peak)\n".utf8).write(to: URL(fileURLWithPath: path))
        }
    }

    /// User + system CPU time of the children waited for so far (exact per child: CPU is not shared at exec).
    private static func childrenCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
