import ChildProcessTesting
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// A scenario of SignalCoreIntegrationHelper in its own process, started with an empty signal mask and default
/// dispositions whatever this test process has. The test sends signals to it and asserts on its output lines
/// and exit status. Every wait is bounded. The spawning, reading and reaping are ChildProcessTesting's.
final class IntegrationProcess: SpawnedProcess {
    typealias Exit = ProcessExit

    /// Starts `program` with `arguments`. Its standard output is read by the test; its standard error too when
    /// `captureStandardError` is set (mixed into the same lines), otherwise it goes to the test's.
    convenience init(_ arguments: [String], program: String = "SignalCoreIntegrationHelper", captureStandardError: Bool = false) throws {
        try self.init(executable: IntegrationProcess.builtProduct(program), arguments: arguments,
                      standardError: captureStandardError ? .mergedWithOutput : .inherited)
    }

    /// Reads until a line starting with `prefix` arrives; throws after `timeout`.
    @discardableResult
    func waitForLine(_ prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        try awaitLine(timeout: timeout, what: "starting with \(prefix)") { $0.hasPrefix(prefix) }.line
    }

    /// Reads all output and reaps the process; kills it and throws after `timeout`.
    func finish(timeout: Duration = .seconds(60)) throws -> Exit { try finish(within: timeout) }

    /// Queues `signal` with `value` (sigqueue), retrying while the kernel's queue is full, up to 10 s.
    func queue(_ signal: CInt, value: CInt) throws {
        try queueSignal(signal, to: pid, value: value, deadline: .now + .seconds(10))
    }

    /// Lines starting with `prefix`.
    func lines(_ prefix: String) -> [String] { lines(startingWith: prefix) }
}

/// SIGRTMIN + `offset`, as the C library defines it.
func realtime(_ offset: Int) -> CInt { Signal.realtime(offset).rawValue }
