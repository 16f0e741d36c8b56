import Foundation
import FuzzTargets

// Built two ways. With `-DFUZZING -sanitize=fuzzer,address` (scripts/fuzz.sh) libFuzzer supplies `main` and calls
// this entry point; the target is named by EA_WEIGHTS_FUZZ_TARGET. Otherwise it is a plain tool that replays
// input files through a target: `ea-weights-fuzz TARGET FILE...`.

#if FUZZING
private let target: String = {
    let name = ProcessInfo.processInfo.environment["EA_WEIGHTS_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        FileHandle.standardError.write(Data("set EA_WEIGHTS_FUZZ_TARGET to one of \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return name
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.run(target, size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : [])
    return 0
}
#else
@main
struct FuzzReplay {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let target = arguments.first, FuzzTargets.names.contains(target) else {
            print("usage: ea-weights-fuzz TARGET FILE...   (targets: \(FuzzTargets.names.joined(separator: ", ")))")
            exit(2)
        }
        for file in arguments.dropFirst() {
            FuzzTargets.run(target, Array(try Data(contentsOf: URL(fileURLWithPath: file))))
            print("ok  \(file)")
        }
    }
}
#endif
