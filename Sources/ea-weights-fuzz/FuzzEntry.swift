import Foundation
import FuzzTargets

// Built two ways. With `-DFUZZING -sanitize=fuzzer,address` (scripts/fuzz.sh) `main` hands the command line to
// libFuzzer's driver, which calls `fuzzOneInput` with each input; the target is named by EA_WEIGHTS_FUZZ_TARGET.
// Otherwise it is a plain tool that replays input files through a target: `ea-weights-fuzz TARGET FILE...`.

#if FUZZING
/// libFuzzer's entry for programs with their own `main` (SwiftPM names the executable's entry point itself).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

nonisolated(unsafe) private var target = ""

/// The callback libFuzzer's own `main` would name; -sanitize=fuzzer links that `main` in whole, so it must resolve.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.run(target, size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : [])
    return 0
}
#endif

@main
struct FuzzEntry {
    static func main() throws {
        #if FUZZING
        target = ProcessInfo.processInfo.environment["EA_WEIGHTS_FUZZ_TARGET"] ?? ""
        guard FuzzTargets.names.contains(target) else {
            FileHandle.standardError.write(Data("set EA_WEIGHTS_FUZZ_TARGET to one of \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
            exit(2)
        }
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        let arguments = CommandLine.arguments.dropFirst()
        guard let target = arguments.first, FuzzTargets.names.contains(target) else {
            print("usage: ea-weights-fuzz TARGET FILE...   (targets: \(FuzzTargets.names.joined(separator: ", ")))")
            exit(2)
        }
        for file in arguments.dropFirst() {
            FuzzTargets.run(target, Array(try Data(contentsOf: URL(fileURLWithPath: file))))
            print("ok  \(file)")
        }
        #endif
    }
}
