// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ea-weights",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ea-weights", targets: ["ea-weights"]),
        .library(name: "Safetensors", targets: ["Safetensors"]),
        .library(name: "WeightOps", targets: ["WeightOps"]),
        .library(name: "Runner", targets: ["Runner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // System libraries (Debian: libarchive-dev, libavcodec-dev, libavformat-dev, libswscale-dev, libsentencepiece-dev, zlib1g-dev).
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat", providers: [.apt(["libavcodec-dev", "libavformat-dev", "libswscale-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "CSentencePiece",
            linkerSettings: [.linkedLibrary("sentencepiece")]
        ),

        // Hot loops in C with AVX-512 intrinsics and a portable fallback, chosen at run time (Numerics wraps them;
        // Safetensors widens 16-bit floats with them).
        .target(name: "CKernels"),
        .target(name: "Safetensors", dependencies: ["CKernels"]),
        // OpenBLAS (loaded at first use), the parallel loops, the vector kernels: the math WeightOps and Runner share.
        .target(name: "Numerics", dependencies: ["CKernels"]),
        .target(
            name: "WeightOps",
            dependencies: [
                "Safetensors", "Numerics", "CArchive",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Runner",
            dependencies: ["Safetensors", "Numerics", "WeightOps", "CFFmpeg", "CSentencePiece", "CZlib", "Yams"]
        ),
        // Synthetic real-size inputs and the Python references the bench commands time; tests build archives with it.
        .target(name: "Bench", dependencies: ["Safetensors", "Numerics", "WeightOps", "Runner", "CArchive"]),
        .executableTarget(
            name: "ea-weights",
            dependencies: [
                "Safetensors", "Numerics", "WeightOps", "Runner", "Bench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The parsers of untrusted input as fuzz targets (scripts/fuzz.sh builds the fuzzer; tests replay the corpus).
        .target(name: "FuzzTargets", dependencies: ["Safetensors", "WeightOps", "Runner"]),
        .executableTarget(name: "ea-weights-fuzz", dependencies: ["FuzzTargets"]),

        .target(name: "TestSupport", dependencies: ["Safetensors"], path: "Tests/Support"),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "CKernels"]),
        .testTarget(name: "NumericsTests", dependencies: ["Numerics"]),
        .testTarget(name: "WeightOpsTests", dependencies: ["TestSupport", "WeightOps", "Safetensors", "Bench"]),
        .testTarget(name: "RunnerTests", dependencies: ["TestSupport", "Runner", "Safetensors", "Numerics", "WeightOps"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["TestSupport", "FuzzTargets"]),
        .testTarget(name: "EAWeightsCLITests", dependencies: ["TestSupport", "ea-weights", "Safetensors", "Bench"]),
    ],
    swiftLanguageModes: [.v5]
)
