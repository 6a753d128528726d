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
