// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "SignalCore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SignalCore", targets: ["SignalCore"]),
        .library(name: "SignalCoreLifecycle", targets: ["SignalCoreLifecycle"]),
        .executable(name: "signal-worker", targets: ["signal-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "CSignalShim",
            cSettings: [
                .define("_GNU_SOURCE"),
            ]
        ),
        .target(
            name: "SignalCore",
            dependencies: ["CSignalShim"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "SignalCoreTestHelper",
            dependencies: ["SignalCore", "CSignalShim"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SignalCoreTests",
            dependencies: ["SignalCore", "SignalCoreTestHelper"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Lifecycle patterns (graceful shutdown, reload, stats, thread dump) and the signal-worker daemon.
        .target(
            name: "SignalCoreLifecycle",
            dependencies: ["SignalCore", "CSignalShim"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "signal-worker",
            dependencies: [
                "SignalCoreLifecycle",
                "SignalCore",
                "CSignalShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Exports the executable's own symbols so that the thread dump can name its functions (dladdr).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),
        .executableTarget(
            name: "LifecycleTestHelper",
            dependencies: ["SignalCoreLifecycle", "SignalCore", "CSignalShim"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "LifecycleTests",
            dependencies: ["SignalCoreLifecycle", "signal-worker", "LifecycleTestHelper"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
