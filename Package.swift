// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "SignalCore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SignalCore", targets: ["SignalCore"]),
        // Integrations: each is its own product, so depending on "SignalCore" alone builds none of them.
        .library(name: "SignalCoreServiceLifecycle", targets: ["SignalCoreServiceLifecycle"]),
        .library(name: "SignalCoreTelemetry", targets: ["SignalCoreTelemetry"]),
        .library(name: "SignalCoreLifecycle", targets: ["SignalCoreLifecycle"]),
        .executable(name: "signal-worker", targets: ["signal-worker"]),
    ],
    // One trait per integration, all enabled by default. A consumer that wants only the core writes
    // `.package(url: ..., from: ..., traits: [])`: the integration targets then build empty and their packages
    // are not needed. See docs/readme/integrations.md.
    traits: [
        .trait(
            name: "ServiceLifecycleIntegration",
            description: "SignalCoreServiceLifecycle: drive a ServiceGroup's shutdown and reload from SignalCore (swift-service-lifecycle)."
        ),
        .trait(
            name: "TelemetryIntegration",
            description: "SignalCoreTelemetry: engine events to swift-log, counters and delivery latency to swift-metrics."
        ),
        .trait(
            name: "CommandLineTools",
            description: "The package's programs (signal-worker, signalcore-stress) parse their flags with swift-argument-parser."
        ),
        .default(enabledTraits: ["ServiceLifecycleIntegration", "TelemetryIntegration", "CommandLineTools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"),
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
            dependencies: ["SignalCore", "CSignalShim", "ChildProcessTesting"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "SignalCoreServiceLifecycle",
            dependencies: [
                "SignalCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
                .product(name: "Logging", package: "swift-log",
                         condition: .when(traits: ["ServiceLifecycleIntegration"])),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "SignalCoreTelemetry",
            dependencies: [
                "SignalCore",
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["TelemetryIntegration"])),
                .product(name: "Metrics", package: "swift-metrics", condition: .when(traits: ["TelemetryIntegration"])),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
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
            swiftSettings: [.swiftLanguageMode(.v6)]
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
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SignalCoreIntegrationTests",
            dependencies: ["SignalCore", "SignalCoreIntegrationHelper", "signalcore-service-example", "ChildProcessTesting"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SignalCoreTests",
            dependencies: ["SignalCore", "SignalCoreTestHelper", "ChildProcessTesting"],
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
                .product(name: "ArgumentParser", package: "swift-argument-parser",
                         condition: .when(traits: ["CommandLineTools"])),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Exports the executable's own symbols so that the thread dump can name its functions (dladdr).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),
        .executableTarget(
            name: "LifecycleTestHelper",
            dependencies: ["SignalCoreLifecycle", "SignalCore", "CSignalShim", "ChildProcessTesting"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "LifecycleTests",
            dependencies: ["SignalCoreLifecycle", "signal-worker", "LifecycleTestHelper", "ChildProcessTesting"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)

// MARK: - Stress tool (issue 4): `signalcore-stress` and the checker it uses.
package.products.append(.executable(name: "signalcore-stress", targets: ["SignalCoreStress"]))
package.targets.append(contentsOf: [
    .target(name: "CStressSupport", cSettings: [.define("_GNU_SOURCE")]),
    .target(name: "StressChecker", swiftSettings: [.swiftLanguageMode(.v6)]),
    .executableTarget(
        name: "SignalCoreStress",
        dependencies: [
            "SignalCore", "CStressSupport", "StressChecker",
            .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CommandLineTools"])),
        ],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
        name: "StressTests",
        dependencies: ["StressChecker", "SignalCoreStress", "ChildProcessTesting"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
])

// MARK: - Safety verification (issue 5): scenarios in helper processes, their tests, and swift-subprocess for
// the spawn check only (a test-only dependency: nothing in SignalCore uses it).
package.dependencies.append(
    .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2")
)
package.targets.append(contentsOf: [
    .target(
        name: "CSignalVerifySupport",
        dependencies: ["CSignalShim"],
        cSettings: [.define("_GNU_SOURCE")]
    ),
    .executableTarget(
        name: "SignalCoreVerifyHelper",
        dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport", "ChildProcessTesting"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
        name: "SignalCoreAsyncMainHelper",
        dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport", "ChildProcessTesting"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
        name: "SignalCoreSubprocessHelper",
        dependencies: [
            "SignalCore", "CSignalVerifySupport", "ChildProcessTesting",
            .product(name: "Subprocess", package: "swift-subprocess"),
        ],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
        name: "SignalCoreSafetyTests",
        dependencies: ["SignalCore", "SignalCoreVerifyHelper", "SignalCoreAsyncMainHelper", "SignalCoreSubprocessHelper",
                       "ChildProcessTesting"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
])

// MARK: - Test support shared by the test targets and their helper executables (not a product): spawning a
// helper with a clean signal state and reading its `key=value` lines with deadlines, and the helper's end of that
// protocol (`say`, `fail`, `HelperThread`).
package.targets.append(
    .target(
        name: "ChildProcessTesting",
        dependencies: ["SignalCore", "CSignalShim"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    )
)

// MARK: - signal-run: an init for containers (spawns COMMAND, forwards signals, reaps every child, PID 1 and
// subreaper), built on SignalCoreLifecycle's ChildSupervisor. No package dependencies: its command line is parsed
// by hand. Its tests run it as PID 1 of new PID namespaces; the COMMANDs they run are the shell fixtures in
// Tests/SignalRunTests/Fixtures, which scripts/compare-tini runs under tini too. The helper runs ChildSupervisor
// scenarios in processes of their own.
package.products.append(.executable(name: "signal-run", targets: ["signal-run"]))
package.targets.append(contentsOf: [
    .executableTarget(
        name: "signal-run",
        dependencies: ["SignalCoreLifecycle", "SignalCore"],
        path: "Tools/signal-run",
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
        name: "ChildSupervisorTestHelper",
        dependencies: ["SignalCoreLifecycle", "SignalCore", "ChildProcessTesting"],
        path: "Tests/Helpers/ChildSupervisorTestHelper",
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
        name: "SignalRunTests",
        dependencies: ["signal-run", "ChildSupervisorTestHelper", "SignalCoreLifecycle", "SignalCore", "ChildProcessTesting"],
        exclude: ["Fixtures"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
])
