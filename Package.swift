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

// MARK: - Stress tool (issue 4): `signalcore-stress` and the checker it uses.
package.dependencies.append(.package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"))
package.products.append(.executable(name: "signalcore-stress", targets: ["SignalCoreStress"]))
package.targets.append(contentsOf: [
    .target(name: "CStressSupport", cSettings: [.define("_GNU_SOURCE")]),
    .target(name: "StressChecker", swiftSettings: [.swiftLanguageMode(.v6)]),
    .executableTarget(
        name: "SignalCoreStress",
        dependencies: [
            "SignalCore", "CStressSupport", "StressChecker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
        name: "StressTests",
        dependencies: ["StressChecker", "SignalCoreStress"],
        swiftSettings: [.swiftLanguageMode(.v6)]
    ),
])
