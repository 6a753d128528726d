// swift-tools-version: 6.1
// SignalCore's benchmark: a separate package so that the root package's `swift build` / `swift test` (and CI)
// never build the peers it compares against (swift-service-lifecycle and its dependencies). It depends on the
// root package by path and is built in release mode by scripts/bench.
import PackageDescription

let package = Package(
    name: "SignalCoreBenchmarks",
    products: [
        .executable(name: "signalcore-bench", targets: ["SignalCoreBench"]),
        .executable(name: "BenchReceiver", targets: ["BenchReceiver"]),
        .executable(name: "BenchAsyncReceiver", targets: ["BenchAsyncReceiver"]),
        .executable(name: "BenchCReceiver", targets: ["BenchCReceiver"]),
        // Preloaded by the allocation benchmarks (LD_PRELOAD): counts every malloc of the process.
        .library(name: "BenchMallocCounter", type: .dynamic, targets: ["CMallocCounter"]),
    ],
    dependencies: [
        .package(name: "SignalCore", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
    ],
    targets: [
        .target(name: "CBench", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "CMallocCounter"),
        .executableTarget(
            name: "BenchCReceiver",
            dependencies: ["CBench"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // Every SignalCore call of the benchmark: the receivers both receiver programs run, and the costs.
        .target(
            name: "SignalCoreReceivers",
            dependencies: ["CBench", .product(name: "SignalCore", package: "SignalCore")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "BenchReceiver",
            dependencies: [
                "CBench",
                "SignalCoreReceivers",
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The same SignalCore receivers in an async @main program.
        .executableTarget(
            name: "BenchAsyncReceiver",
            dependencies: ["CBench", "SignalCoreReceivers"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "SignalCoreBench",
            dependencies: [
                "CBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
