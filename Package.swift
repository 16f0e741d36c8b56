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
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
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

        // Hot loops in C with AVX-512 intrinsics and a portable fallback, chosen at run time (EANumerics wraps them;
        // Safetensors widens 16-bit floats with them).
        .target(name: "CKernels"),
        .target(name: "Safetensors", dependencies: ["CKernels"]),
        // OpenBLAS (loaded at first use), the parallel loops, the vector kernels: the math WeightOps and Runner share.
        // Named EANumerics because Hummingbird's graph (swift-nio-extras → swift-algorithms) brings
        // apple/swift-numerics, whose `Numerics` target would clash: SwiftPM needs target names unique across the
        // package graph.
        .target(name: "EANumerics", dependencies: ["CKernels"], swiftSettings: optimizedInDebugBuilds),
        .target(
            name: "WeightOps",
            dependencies: [
                "Safetensors", "EANumerics", "CArchive",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Runner",
            dependencies: ["Safetensors", "EANumerics", "WeightOps", "CFFmpeg", "CSentencePiece", "CZlib", "Yams"],
            swiftSettings: optimizedInDebugBuilds
        ),
        // Synthetic real-size inputs and the Python references the bench commands time; tests build archives with it.
        .target(name: "Bench", dependencies: ["Safetensors", "EANumerics", "WeightOps", "Runner", "CArchive"]),
        // `serve`: EasyAnimate's web UI (the page is plain HTML/CSS/JS in Resources) and its JSON API.
        .target(
            name: "WebUI",
            dependencies: [
                "Safetensors", "EANumerics", "WeightOps", "Runner",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.copy("Resources/page")]
        ),
        .executableTarget(
            name: "ea-weights",
            dependencies: [
                "Safetensors", "EANumerics", "WeightOps", "Runner", "Bench", "WebUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The parsers of untrusted input as fuzz targets (scripts/fuzz.sh builds the fuzzer; tests replay the corpus).
        .target(name: "FuzzTargets", dependencies: ["Safetensors", "WeightOps", "Runner"]),
        .executableTarget(name: "ea-weights-fuzz", dependencies: ["FuzzTargets"]),

        .target(name: "TestSupport", dependencies: ["Safetensors", "CFFmpeg"], path: "Tests/Support"),
        .testTarget(name: "SafetensorsTests", dependencies: ["TestSupport", "Safetensors", "CKernels"]),
        .testTarget(name: "EANumericsTests", dependencies: ["TestSupport", "EANumerics"]),
        .testTarget(name: "WeightOpsTests", dependencies: ["TestSupport", "WeightOps", "Safetensors", "Bench"]),
        .testTarget(name: "RunnerTests", dependencies: ["TestSupport", "Runner", "Safetensors", "EANumerics", "WeightOps"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["TestSupport", "FuzzTargets"]),
        .testTarget(
            name: "WebUITests",
            dependencies: [
                "TestSupport", "WebUI", "Runner", "WeightOps", "Safetensors",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "EAWeightsCLITests", dependencies: ["TestSupport", "ea-weights", "Safetensors", "Bench"]),
    ],
    swiftLanguageModes: [.v5]
)

/// The runner's and the numerics' loops are optimized in debug builds too: the test suite generates the demo
/// set's videos (DemoModelTests), which take 5× as long unoptimized. Testable imports still work (-enable-testing).
var optimizedInDebugBuilds: [SwiftSetting] { [.unsafeFlags(["-O"], .when(configuration: .debug))] }
