#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The example service as a user would run it: it ticks, reloads on SIGHUP, and exits 0 on SIGTERM.
@Suite struct ExampleTests {
    @Test func reloadsAndShutsDown() throws {
        let example = try SpawnedProcess("signalcore-service-example")
        try example.waitForLine(startingWith: "tick 1 ")
        try example.send(SIGHUP)
        let reloaded = fields(try example.waitForLine(startingWith: "reloaded generation=1 "))
        #expect(reloaded["from_pid"] == "\(getpid())")
        try example.send(SIGTERM)
        let exit = try example.finish()
        #expect(exit == .exited(0), "\(example.lines)")
        #expect(example.lines.contains("shutdown signal=SIGTERM from_pid=\(getpid()) action=gracefulShutdown"))
        #expect(example.lines.contains("bye reloads=1"))
    }

    @Test func refusesArguments() throws {
        let example = try SpawnedProcess("signalcore-service-example", ["--bogus"], standardError: .mergedWithOutput)
        #expect(try example.finish() == .exited(64))
        #expect(example.lines == ["error: unknown argument '--bogus' (signalcore-service-example takes none; see --help)"])
        let help = try SpawnedProcess("signalcore-service-example", ["--help"])
        #expect(try help.finish() == .exited(0))
        #expect(help.lines.first?.hasPrefix("usage: signalcore-service-example") == true)
    }
}
#endif
