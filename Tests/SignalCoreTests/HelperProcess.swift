import ChildProcessTesting

#if canImport(Glibc)
import Glibc
#endif

/// A scenario of SignalCoreTestHelper running in its own process: signal state is process-global, so every
/// scenario that starts the engine or changes dispositions runs in a child and the tests assert from here.
/// The spawning, reading and reaping are ChildProcessTesting's; this adds the helper and the timeouts.
final class HelperProcess: SpawnedProcess {
    typealias Exit = ProcessExit

    /// The helper executable, built beside the test bundle.
    static var executable: String { builtProduct("SignalCoreTestHelper") }

    convenience init(_ arguments: [String], executable: String = HelperProcess.executable) throws {
        try self.init(executable: executable, arguments: arguments)
    }

    /// Reads output until a line starting with `prefix` arrives; fails after `timeout`.
    @discardableResult
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        try awaitLine(timeout: timeout, what: "starting with \(prefix)") { $0.hasPrefix(prefix) }.line
    }

    /// Reads all output and waits for the process to end; kills it and fails after `timeout`.
    func finish(timeout: Duration = .seconds(60)) throws -> Exit { try finish(within: timeout) }

    /// `key=value` pairs from every line that has them.
    var values: [String: String] { values(in: .stdout) }

    func value(_ key: String) -> String? { values[key] }
    func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }

    /// Runs a scenario that needs nothing from the parent; returns it finished.
    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (HelperProcess, Exit) {
        let helper = try HelperProcess(arguments)
        let exit = try helper.finish(timeout: timeout)
        return (helper, exit)
    }
}
