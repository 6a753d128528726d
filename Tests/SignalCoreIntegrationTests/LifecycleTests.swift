#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import SignalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGRTMIN + `offset`, as the C library defines it.
func realtime(_ offset: Int) -> CInt { Signal.realtime(offset).rawValue }

/// SignalShutdownService and SignalReloadService with a real ServiceGroup, driven by real signals sent from
/// this process to a helper process.
@Suite struct LifecycleTests {
    /// Starts the `shutdown` scenario in `mode` and waits until its group runs and it takes signals.
    func startShutdown(_ mode: String) throws -> SpawnedProcess {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["shutdown", mode])
        try helper.waitForLine(startingWith: "worker running=1")
        try helper.waitForLine(startingWith: "READY")
        return helper
    }

    /// One SIGTERM: the group shuts down gracefully, the worker sees it, the service reports the sender, and on
    /// the way out (exit mode `returnNormally`) SIGTERM and SIGINT stay caught by the engine (the claim rule).
    @Test func sigtermShutsDownGracefully() throws {
        let helper = try startShutdown("graceful")
        try helper.send(SIGTERM)
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        let triggers = helper.lines(startingWith: "trigger")
        #expect(triggers.count == 1)
        let first = fields(triggers.first ?? "")
        #expect(first["signal"] == "\(SIGTERM)")
        #expect(first["action"] == "gracefulShutdown")
        #expect(first["pid"] == "\(getpid())")
        #expect(first["code"] == "0")  // SI_USER: kill(2)
        #expect(helper.lines(startingWith: "worker graceful_shutdown=1").count == 1)
        #expect(helper.lines.contains("run_ended error=none"))
        #expect(helper.lines.contains("stats received=1 graceful=1 cancelled=0"))
        #expect(helper.lines.contains("after still_watched=2"))
        #expect(helper.lines.contains("after sigterm_disposition=handler"))
    }

    /// A worker that ignores graceful shutdown: the second signal (SIGINT after SIGTERM) cancels the group, and
    /// run() returns without throwing the cancellation's error.
    @Test func secondSignalEscalatesToCancellation() throws {
        let helper = try startShutdown("escalate")
        try helper.send(SIGTERM)
        try helper.waitForLine(startingWith: "trigger ordinal=1")
        try helper.waitForLine(startingWith: "worker graceful_requested=1")
        try helper.send(SIGINT)
        try helper.waitForLine(startingWith: "trigger ordinal=2")
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        let triggers = helper.lines(startingWith: "trigger").map(fields)
        #expect(triggers.map { $0["signal"] } == ["\(SIGTERM)", "\(SIGINT)"])
        #expect(triggers.map { $0["action"] } == ["gracefulShutdown", "cancellation"])
        #expect(helper.lines.contains("worker cancelled=1"))
        #expect(helper.lines(startingWith: "worker slept_out").isEmpty)
        #expect(helper.lines.contains("stats received=2 graceful=1 cancelled=1"))
        #expect(helper.lines.contains("run_ended error=none"))
        #expect(helper.lines.contains("after still_watched=2"))
    }

    /// Repeated SIGTERMs are each seen and counted (no coalescing: each is sent after the previous one was
    /// reported); with escalation off they do nothing more, and the cancellation signal cancels.
    @Test func repeatedSignalsAreCounted() throws {
        let helper = try startShutdown("count")
        for ordinal in 1...3 {
            try helper.send(SIGTERM)
            try helper.waitForLine(startingWith: "trigger ordinal=\(ordinal) ")
            // The group passes graceful shutdown on asynchronously: let it reach the worker before more come.
            if ordinal == 1 { try helper.waitForLine(startingWith: "worker graceful_requested=1") }
        }
        try helper.send(SIGUSR2)
        try helper.waitForLine(startingWith: "trigger ordinal=4 ")
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        let triggers = helper.lines(startingWith: "trigger").map(fields)
        #expect(triggers.map { $0["action"] } == ["gracefulShutdown", "none", "none", "cancellation"])
        #expect(triggers.map { $0["pid"] } == Array(repeating: "\(getpid())", count: 4))
        #expect(helper.lines.contains("worker graceful_requested=1"))
        #expect(helper.lines.contains("worker cancelled=1"))
        #expect(helper.lines.contains("stats received=4 graceful=1 cancelled=1"))
    }

    /// Real-time signals, which UnixSignalsSequence does not offer: SIGRTMIN+1 (queued with a value) shuts
    /// down gracefully, SIGRTMIN+2 cancels; the queued values and SI_QUEUE code come through.
    @Test func realtimeSignalsDriveShutdown() throws {
        let helper = try startShutdown("realtime")
        try helper.queue(realtime(1), value: 7)
        try helper.waitForLine(startingWith: "trigger ordinal=1 ")
        try helper.waitForLine(startingWith: "worker graceful_requested=1")
        try helper.queue(realtime(2), value: 9)
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        let triggers = helper.lines(startingWith: "trigger").map(fields)
        #expect(triggers.count == 2)
        #expect(triggers.map { $0["signal"] } == ["\(realtime(1))", "\(realtime(2))"])
        #expect(triggers.map { $0["value"] } == ["7", "9"])
        #expect(triggers.map { $0["code"] } == ["-1", "-1"])  // SI_QUEUE
        #expect(triggers.map { $0["action"] } == ["gracefulShutdown", "cancellation"])
        #expect(helper.lines.contains("worker cancelled=1"))
        #expect(helper.lines.contains("after still_watched=2"))
    }

    /// Inside an outer ServiceGroup: the outer group's graceful shutdown (no signal at all) is passed on to the
    /// wrapped group, whose worker finishes; nothing was counted as a signal.
    @Test func outerGracefulShutdownReachesTheWrappedGroup() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["shutdown-nested"])
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        #expect(helper.lines.contains("worker graceful_shutdown=1"))
        #expect(helper.lines.contains("run_ended error=none"))
        #expect(helper.lines.contains("stats received=0"))
        #expect(helper.lines.contains("after still_watched=2"))
        #expect(helper.lines(startingWith: "trigger").isEmpty)
    }

    /// An engine in manual delivery mode would never hand the service an event: run() refuses with a typed
    /// error, watches nothing, and the group's worker never runs.
    @Test func refusesAnEngineInManualDelivery() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["shutdown-manual"])
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        #expect(helper.lines.contains(
            "run_ended signal_error=invalid configuration: the signal engine runs with manual delivery; lifecycle services need automatic"))
        #expect(helper.lines.contains("after term_watched=0"))
        #expect(helper.lines(startingWith: "worker").isEmpty)
    }

    /// SIGHUP reloads; five SIGRTMIN+3 queued during reload 1 fold into exactly one more reload that reports
    /// all five and the newest value; a failing reload is counted and the service keeps going; SIGTERM ends it
    /// all, and every signal stays watched (the claim rule).
    @Test func reloadCoalescesBurstsAndSurvivesFailures() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["reload"])
        try helper.waitForLine(startingWith: "READY")
        try helper.send(SIGHUP)
        let first = fields(try helper.waitForLine(startingWith: "reload number=1 "))
        #expect(first["coalesced"] == "1")
        #expect(first["signal"] == "\(SIGHUP)")
        #expect(first["pid"] == "\(getpid())")
        for value in 1...5 { try helper.queue(realtime(3), value: CInt(value)) }
        let second = fields(try helper.waitForLine(startingWith: "reload number=2 "))
        #expect(second["coalesced"] == "5")
        #expect(second["signal"] == "\(realtime(3))")
        #expect(second["value"] == "5")
        try helper.send(SIGHUP)
        let third = fields(try helper.waitForLine(startingWith: "reload number=3 "))
        #expect(third["coalesced"] == "1")
        try helper.send(SIGTERM)
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        #expect(helper.lines(startingWith: "reload number=").count == 3)
        #expect(helper.lines.contains("reload1 saw_received=6"))
        #expect(helper.lines.contains("reload_stats received=7 completed=2 failed=1"))
        #expect(helper.lines.contains("run_ended error=none"))
        #expect(helper.lines.contains("after usr1_watched=1 hup_watched=1 rt3_watched=1"))
        #expect(helper.lines.contains("after still_watched=4"))
    }

    /// Graceful shutdown during a reload: the running reload finishes, a SIGHUP that arrives meanwhile starts no
    /// new one, and the group ends normally.
    @Test func shutdownLetsTheRunningReloadFinish() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["reload-shutdown"])
        try helper.waitForLine(startingWith: "READY")
        try helper.send(SIGHUP)
        try helper.waitForLine(startingWith: "reload number=1 started=1")
        try helper.send(SIGTERM)
        try helper.waitForLine(startingWith: "reload number=1 saw_shutdown=1")
        try helper.send(SIGHUP)
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        #expect(helper.lines.contains("reload number=1 finished=1"))
        #expect(helper.lines(startingWith: "reload number=2").isEmpty)
        #expect(helper.lines.contains("reload_stats received=1 completed=1 failed=0"))
        #expect(helper.lines.contains("run_ended error=none"))
    }
}
#endif
