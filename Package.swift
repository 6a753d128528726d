// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "SignalCore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SignalCore", targets: ["SignalCore"]),
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
    ]
)

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
        dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
        name: "SignalCoreAsyncMainHelper",
        dependencies: ["SignalCore", "CSignalShim", "CSignalVerifySupport"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
        name: "SignalCoreSubprocessHelper",
        dependencies: [
            "SignalCore", "CSignalVerifySupport",
            .product(name: "Subprocess", package: "swift-subprocess"),
        ],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
        name: "SignalCoreSafetyTests",
        dependencies: ["SignalCore", "SignalCoreVerifyHelper", "SignalCoreAsyncMainHelper", "SignalCoreSubprocessHelper"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
])
