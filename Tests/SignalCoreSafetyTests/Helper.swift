import ChildProcessTesting
import Foundation

/// One run of a helper executable (built beside the test bundle) in its own process: every scenario changes
/// process-wide signal state, so none runs in the test process. Output is `key=value` words, `PASS …` and
/// `FAIL …` lines; the test asserts from here. Standard error is mixed into the output lines. The spawning,
/// reading and reaping are ChildProcessTesting's.
final class Scenario: SpawnedProcess {
    typealias Exit = ProcessExit

    static func path(of executable: String) -> String { builtProduct(executable) }

    /// Starts `executable` with `arguments`; stdout (and stderr) come to us through a pipe. The child starts with
    /// an empty mask and default dispositions whatever this process has (it spawns with both reset).
    convenience init(_ executable: String, _ arguments: [String], signalQueue: SignalQueueAccess = .shared) throws {
        try self.init(executable: Scenario.path(of: executable), arguments: arguments, standardError: .mergedWithOutput,
                      signalQueue: signalQueue)
    }

    /// Reads until a line starts with `prefix`; throws after `timeout`.
    @discardableResult
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        try awaitLine(timeout: timeout, what: "starting with \(prefix)") { $0.hasPrefix(prefix) }.line
    }

    /// Reads everything and reaps the process; kills it and throws after `timeout`.
    func finish(timeout: Duration) throws -> Exit { try finish(within: timeout) }

    /// `key=value` words of every line (a later line wins).
    var values: [String: String] { values(in: .stdout) }

    func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }

    /// Runs a scenario that needs nothing from the parent.
    static func run(_ executable: String = "SignalCoreVerifyHelper", _ arguments: [String],
                    timeout: Duration = .seconds(120), signalQueue: SignalQueueAccess = .shared) throws -> (Scenario, Exit) {
        let scenario = try Scenario(executable, arguments, signalQueue: signalQueue)
        let exit = try scenario.finish(timeout: timeout)
        return (scenario, exit)
    }
}

/// The package root (this file is Tests/SignalCoreSafetyTests/Helper.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
