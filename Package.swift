// swift-tools-version: 6.1
import PackageDescription

// The products are the libraries in Sources/ and signal-run, an init for containers (Tools/signal-run, no package
// dependencies). Everything else is this package's own: the examples (Examples/), the stress tool (Tools/),
// and the test targets with their support libraries (Tests/Support/) and
// the helper programs they spawn (Tests/Helpers/). None of those is a product, so none reaches a consumer.
//
// What a consumer fetches: SwiftPM fetches every package that the targets of *any* product of a dependency
// use (not only the products the consumer asks for), unless a trait that is off guards the use. So the
// integrations' packages are used only under their traits, which are off by default, and the programs, which
// use swift-argument-parser, are not products. A consumer of `SignalCore` alone fetches nothing else.
let package = Package(
    name: "SignalCore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SignalCore", targets: ["SignalCore"]),
        .library(name: "SignalCoreLifecycle", targets: ["SignalCoreLifecycle"]),
        .library(name: "SignalCoreServiceLifecycle", targets: ["SignalCoreServiceLifecycle"]),
        .library(name: "SignalCoreTelemetry", targets: ["SignalCoreTelemetry"]),
        .executable(name: "signal-run", targets: ["signal-run"]),
    ],
    // Both off by default. Without its trait an integration library builds without its packages, and its types
    // are unavailable, with a message that names the trait.
    traits: [
        .trait(
            name: "ServiceLifecycleIntegration",
            description: "SignalCoreServiceLifecycle: drive a ServiceGroup's shutdown and reload from SignalCore (swift-service-lifecycle, swift-log)."
        ),
        .trait(
            name: "TelemetryIntegration",
            description: "SignalCoreTelemetry: engine events to swift-log, counters and delivery latency to swift-metrics."
        ),
    ],
    dependencies: [
        // The integrations, each under its trait.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // The programs' command lines.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Tests only: a child started with swift-subprocess begins with a clean signal state.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        // MARK: - Libraries

        .target(
            name: "CSignalShim",
            exclude: ["model"],  // the Promela model of the wait-role protocol (scripts/model-check)
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "SignalCore",
            dependencies: ["CSignalShim"]
        ),
        .target(
            name: "SignalCoreLifecycle",
            dependencies: ["SignalCore", "CSignalShim"]
        ),
        .target(
            name: "SignalCoreServiceLifecycle",
            dependencies: [
                "SignalCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["ServiceLifecycleIntegration"])),
            ]
        ),
        .target(
            name: "SignalCoreTelemetry",
            dependencies: [
                "SignalCore",
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["TelemetryIntegration"])),
                .product(name: "Metrics", package: "swift-metrics", condition: .when(traits: ["TelemetryIntegration"])),
            ]
        ),

        // MARK: - Programs and examples

        // signal-run: spawns COMMAND, forwards signals, reaps every child (PID 1 and subreaper); its command
        // line is parsed by hand, so it needs no package.
        .executableTarget(
            name: "signal-run",
            dependencies: ["SignalCoreLifecycle", "SignalCore"],
            path: "Tools/signal-run"
        ),
        .executableTarget(
            name: "signal-worker",
            dependencies: [
                "SignalCoreLifecycle",
                "SignalCore",
                "CSignalShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/signal-worker",
            // Exports the executable's own symbols so that the thread dump can name its functions (dladdr).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),
        .executableTarget(
            name: "signalcore-service-example",
            dependencies: [
                "SignalCore",
                "SignalCoreServiceLifecycle",
                "SignalCoreTelemetry",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Metrics", package: "swift-metrics", condition: .when(traits: ["TelemetryIntegration"])),
            ],
            path: "Examples/signalcore-service-example"
        ),
        .executableTarget(
            name: "signalcore-stress",
            dependencies: [
                "SignalCore",
                "CStressSupport",
                "StressChecker",
                "ChildProcessTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/signalcore-stress"
        ),
        .target(
            name: "StressChecker",
            dependencies: ["SignalCore"],
            path: "Tools/StressChecker"
        ),
        .target(
            name: "CStressSupport",
            path: "Tools/CStressSupport",
            cSettings: [.define("_GNU_SOURCE")]
        ),

        // MARK: - Tests

        // Support: spawning a child process with a clean signal state and reading its `key=value` lines with
        // deadlines, and the helper's end of that protocol.
        .target(
            name: "ChildProcessTesting",
            dependencies: ["SignalCore", "CSignalShim"],
            path: "Tests/Support/ChildProcessTesting"
        ),
        .target(
            name: "CSignalVerifySupport",
            dependencies: ["CSignalShim"],
            path: "Tests/Support/CSignalVerifySupport",
            cSettings: [.define("_GNU_SOURCE")]
        ),

        // Helpers: each test scenario changes process-wide signal state, so it runs in one of these programs.
        .executableTarget(
            name: "SignalCoreTestHelper",
            dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport", "ChildProcessTesting"],
            path: "Tests/Helpers/SignalCoreTestHelper"
        ),
        .executableTarget(
            name: "SignalCoreVerifyHelper",
            dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport", "ChildProcessTesting"],
            path: "Tests/Helpers/SignalCoreVerifyHelper"
        ),
        .executableTarget(
            name: "SignalCoreAsyncMainHelper",
            dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport", "ChildProcessTesting"],
            path: "Tests/Helpers/SignalCoreAsyncMainHelper"
        ),
        .executableTarget(
            name: "SignalCoreSubprocessHelper",
            dependencies: [
                "SignalCore",
                "CSignalVerifySupport",
                "ChildProcessTesting",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            path: "Tests/Helpers/SignalCoreSubprocessHelper"
        ),
        .executableTarget(
            name: "SignalCoreIntegrationHelper",
            dependencies: [
                "SignalCore",
                "CSignalShim",
                "ChildProcessTesting",
                "SignalCoreServiceLifecycle",
                "SignalCoreTelemetry",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["TelemetryIntegration"])),
                .product(name: "InMemoryLogging", package: "swift-log", condition: .when(traits: ["TelemetryIntegration"])),
                .product(name: "Metrics", package: "swift-metrics", condition: .when(traits: ["TelemetryIntegration"])),
                .product(name: "MetricsTestKit", package: "swift-metrics", condition: .when(traits: ["TelemetryIntegration"])),
            ],
            path: "Tests/Helpers/SignalCoreIntegrationHelper"
        ),
        // The integrations in the shape the README shows: an async @main program with a ServiceGroup.
        .executableTarget(
            name: "SignalCoreServiceHelper",
            dependencies: [
                "SignalCore",
                "ChildProcessTesting",
                "SignalCoreServiceLifecycle",
                "SignalCoreTelemetry",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["ServiceLifecycleIntegration"])),
            ],
            path: "Tests/Helpers/SignalCoreServiceHelper"
        ),
        .executableTarget(
            name: "LifecycleTestHelper",
            dependencies: ["SignalCoreLifecycle", "SignalCore", "CSignalShim", "ChildProcessTesting"],
            path: "Tests/Helpers/LifecycleTestHelper"
        ),
        .executableTarget(
            name: "ChildSupervisorTestHelper",
            dependencies: ["SignalCoreLifecycle", "SignalCore", "ChildProcessTesting"],
            path: "Tests/Helpers/ChildSupervisorTestHelper"
        ),

        .testTarget(
            name: "SignalCoreTests",
            dependencies: ["SignalCore", "CSignalShim", "SignalCoreTestHelper", "SignalCoreAsyncMainHelper", "ChildProcessTesting"]
        ),
        .testTarget(
            name: "SignalCoreSafetyTests",
            dependencies: [
                "SignalCore", "SignalCoreVerifyHelper", "SignalCoreAsyncMainHelper", "SignalCoreSubprocessHelper",
                "ChildProcessTesting",
            ]
        ),
        .testTarget(
            name: "LifecycleTests",
            dependencies: ["SignalCoreLifecycle", "signal-worker", "LifecycleTestHelper", "ChildProcessTesting"]
        ),
        .testTarget(
            name: "SignalCoreIntegrationTests",
            dependencies: [
                "SignalCore", "SignalCoreIntegrationHelper", "SignalCoreServiceHelper", "signalcore-service-example",
                "ChildProcessTesting",
            ]
        ),
        .testTarget(
            name: "StressTests",
            dependencies: ["StressChecker", "SignalCore", "signalcore-stress", "ChildProcessTesting"]
        ),
        // signal-run as PID 1 of new PID namespaces, running the shell fixtures that scripts/compare-tini also
        // runs under tini.
        .testTarget(
            name: "SignalRunTests",
            dependencies: ["signal-run", "ChildSupervisorTestHelper", "SignalCoreLifecycle", "SignalCore", "ChildProcessTesting"],
            exclude: ["Fixtures"]
        ),
    ]
)
