#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The example service as a user would run it: it ticks, reloads on SIGHUP, and after SIGTERM drains and ends
/// the way its exit mode says.
@Suite struct ExampleTests {
    /// Starts the example with `arguments`, reloads it once, then sends `signal`; returns it finished.
    func runUntil(_ signal: CInt, _ arguments: [String] = []) throws -> (SpawnedProcess, ProcessExit) {
        let example = try SpawnedProcess("signalcore-service-example", arguments)
        try example.waitForLine(startingWith: "tick 1 ")
        try example.send(SIGHUP)
        let reloaded = fields(try example.waitForLine(startingWith: "reloaded generation=1 "))
        #expect(reloaded["from_pid"] == "\(getpid())")
        try example.send(signal)
        let exit = try example.finish()
        #expect(example.lines.contains { $0.hasPrefix("ticker stopped after=") }, "\(example.lines)")
        return (example, exit)
    }

    /// By default the process dies by the signal that shut it down, as one without a handler would.
    @Test func diesBySigtermByDefault() throws {
        let (example, exit) = try runUntil(SIGTERM)
        #expect(exit == .signalled(SIGTERM), "\(example.lines)")
        #expect(example.lines.contains("shutdown signal=SIGTERM from_pid=\(getpid()) action=gracefulShutdown"))
        #expect(example.lines(startingWith: "bye").isEmpty)
    }

    @Test func exitsWith128PlusTheSignalInCodeMode() throws {
        let (term, termExit) = try runUntil(SIGTERM, ["--exit-mode", "code"])
        #expect(termExit == .exited(128 + SIGTERM), "\(term.lines)")
        let (interrupt, interruptExit) = try runUntil(SIGINT, ["--exit-mode", "code"])
        #expect(interruptExit == .exited(128 + SIGINT), "\(interrupt.lines)")
        #expect(interrupt.lines.contains("shutdown signal=SIGINT from_pid=\(getpid()) action=gracefulShutdown"))
    }

    @Test func returnsFromRunAndExitsZeroInReturnMode() throws {
        let (example, exit) = try runUntil(SIGTERM, ["--exit-mode", "return"])
        #expect(exit == .exited(0), "\(example.lines)")
        #expect(example.lines.contains("bye reloads=1"))
    }

    @Test func refusesArguments() throws {
        let example = try SpawnedProcess("signalcore-service-example", ["--bogus"], standardError: .mergedWithOutput)
        #expect(try example.finish() == .exited(64))
        #expect(example.lines == ["error: unknown argument '--bogus' (see --help)"])
        let mode = try SpawnedProcess("signalcore-service-example", ["--exit-mode", "zero"], standardError: .mergedWithOutput)
        #expect(try mode.finish() == .exited(64))
        #expect(mode.lines == ["error: --exit-mode takes reraise, code or return"])
        let help = try SpawnedProcess("signalcore-service-example", ["--help"])
        #expect(try help.finish() == .exited(0))
        #expect(help.lines.first?.hasPrefix("usage: signalcore-service-example") == true)
    }
}
#endif
