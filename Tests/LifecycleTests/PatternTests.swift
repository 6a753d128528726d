import ChildProcessTesting
import Foundation
import Testing

@testable import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The library patterns, each scenario in a LifecycleTestHelper process (signal state is process-global).
@Suite struct PatternTests {
    func helper(_ arguments: String...) throws -> SpawnedProcess {
        try SpawnedProcess("LifecycleTestHelper", arguments, standardError: .separate)
    }

    @Test func burstOfSighupsDuringOneReloadLeadsToExactlyOneMoreReload() throws {
        let child = try helper("reload-coalesce", "5")
        let exit = try child.finish()
        #expect(exit == .exited(0), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let v = child.values(in: .stdout)
        #expect(v["during_reload_requests"] == "6")  // 1 that started the reload + a burst of 5 while it ran
        #expect(v["reloads_so_far"] == "0")
        #expect(v["requests"] == "6")
        #expect(v["reloads"] == "2")  // the slow one, then exactly one more
        #expect(v["coalesced"] == "4")
        #expect(v["validate_calls"] == "2")
        #expect(v["generation"] == "3")
        #expect(v["final_reloads"] == "3")  // a request once idle reloads again
        #expect(v["final_generation"] == "4")
    }

    @Test func missingMalformedAndInvalidFilesKeepTheOldConfigWithAReason() throws {
        let child = try helper("reload-outcomes")
        #expect(try child.finish() == .exited(0))
        let lines = child.lines
        func line(_ label: String) -> String { lines.first { $0.hasPrefix(label + ":") } ?? "" }
        #expect(line("missing").contains("generation=1 value=7"))
        #expect(line("missing").contains("open: No such file or directory (errno: 2)"))
        #expect(line("malformed").contains("generation=1 value=7"))
        #expect(line("malformed").contains("is not a valid configuration: invalid JSON"))
        #expect(line("wrongkey").contains("missing key \"value\""))
        #expect(line("invalid").contains("was refused: value must not be negative, not -3"))
        #expect(line("invalid").contains("generation=1 value=7"))
        #expect(line("good").contains("generation=2 value=42 outcome=applied generation 2"))
        #expect(child.values(in: .stdout)["rejected"] == "4")
    }

    @Test(arguments: [("reraise", ProcessExit.signalled(SIGTERM)), ("code", .exited(128 + SIGTERM))])
    func shutdownStateFlipsWakesWaitersAndExitsAsConfigured(mode: String, expected: ProcessExit) throws {
        let child = try helper("shutdown-state", mode)
        try child.waitForLine(containing: "READY", in: .stdout)
        #expect(kill(child.pid, SIGTERM) == 0)
        let exit = try child.finish()
        #expect(exit == expected, "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let before = child.lines.first { $0.hasPrefix("before") } ?? ""
        let after = child.lines.first { $0.hasPrefix("after") } ?? ""
        #expect(before.contains("is_shutting_down=false phase=running"))
        #expect(after.contains("is_shutting_down=true phase=draining signal=SIGTERM cancelled=false"))
        let ns = Double(child.values(in: .stdout)["check_ns"] ?? "") ?? .infinity
        print("isShuttingDown check: \(ns) ns")
        #expect(ns < 50)  // one relaxed load (debug build)
        #expect(child.values(in: .stdout)["seen"] == "0")
    }

    @Test func deadlineRunsCancelHandlersThenEndsTheProcessBySignal() throws {
        let child = try helper("shutdown-deadline")
        try child.waitForLine(containing: "READY", in: .stdout)
        #expect(kill(child.pid, SIGTERM) == 0)
        let exit = try child.finish()
        #expect(exit == .signalled(SIGTERM), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let lines = child.lines
        #expect(lines.contains { $0.hasPrefix("transition draining(Optional(SIGTERM)") })
        #expect(lines.contains { $0.hasPrefix("transition deadlinePassed") })
        #expect(lines.contains("cancel handler ran phase=cancelled"))
        #expect(lines.contains("worker saw cancellation"))
    }

    @Test func repeatFromTheSameSenderIsADuplicateButAnotherSenderEndsTheProcess() throws {
        let child = try helper("shutdown-duplicate")
        try child.waitForLine(containing: "READY", in: .stdout)
        #expect(kill(child.pid, SIGTERM) == 0)
        try child.waitForLine(containing: "transition draining(Optional(SIGTERM)", in: .stdout)
        #expect(kill(child.pid, SIGTERM) == 0)  // same sender (this process), inside the 20 s window
        try child.waitForLine(containing: "transition duplicateIgnored(SIGTERM, senderPID: \(getpid()))", in: .stdout)
        try child.killCommand("TERM")  // another sender: a real second request
        let exit = try child.finish()
        #expect(exit == .signalled(SIGTERM), "\(child.lines)")
        #expect(child.lines.contains("transition immediateExit(SIGTERM)"))
        #expect(child.failures.isEmpty, "\(child.failures)")
    }

    @Test func dumpCapturesEveryThreadAndNamesTheOnesItCannotInterrupt() throws {
        let child = try helper("dump")
        #expect(try child.finish() == .exited(0), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let v = child.values(in: .stdout)
        #expect(v["threads_in_dump"] == v["threads_now"])
        #expect(v["second_dump"] == "ok")
        let threads = child.lines.filter { $0.hasPrefix("thread tid=") }
        func status(_ name: String) -> String? {
            threads.first { $0.contains("name=\(name) ") }?.components(separatedBy: "status=").last
        }
        for i in 0..<3 {
            let s = try #require(status("parked-\(i)"))
            #expect(s.hasPrefix("captured frames="), "\(s)")
            #expect((Int(s.components(separatedBy: "frames=").last ?? "") ?? 0) >= 2)
        }
        #expect(status("rtmax-blocker")?.hasPrefix("not interruptible") == true)
        #expect(status("signalcore")?.hasPrefix("not interruptible") == true)
        #expect(threads.first { $0.contains("status=captured (dumping thread)") } != nil)
        #expect(child.lines.contains { $0.contains("rtmax-blocker") && $0.contains("in system call 0 (read)") })
        print(child.lines.filter { $0.hasPrefix("capture_us") || $0.hasPrefix("threads_in_dump") }.joined(separator: "\n"))
    }

    @Test func shutdownRequestedFromCodeStartsTheDeadlineAtOnceAndEndsWithStatus1AfterTheGrace() throws {
        let child = try helper("shutdown-request")
        let exit = try child.finish()
        #expect(exit == .exited(1), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let lines = child.lines
        func index(_ prefix: String) -> Int? { lines.firstIndex { $0.hasPrefix(prefix) } }
        // The handler runs on the requesting thread before requestShutdown returns, with the phase changed. (The
        // monitor reports the transition on its own thread meanwhile, in no set order with these two.)
        let handler = try #require(index("drain handler ran phase=draining"), "\(lines)")
        let requested = try #require(index("requested phase=draining signal=none"), "\(lines)")
        #expect(handler < requested)
        let draining = try #require(index("transition draining(nil, deadline: 0.3 seconds)"), "\(lines)")
        let passed = try #require(index("transition deadlinePassed(0.3 seconds)"), "\(lines)")
        let cancelled = try #require(index("cancel handler ran phase=cancelled"), "\(lines)")
        #expect(draining < passed && passed < cancelled)
        // The deadline counts from the request (the monitor sleeps with no timeout, so only the request can
        // have woken it), and it is kept.
        let ms = try #require(child.int("cancelled_after_ms"))
        print("requestShutdown to cancelled: \(ms) ms (deadline 300 ms)")
        #expect(ms >= 300)
        #expect(ms < 10_000)
    }

    @Test func aSighupAfterTheReloaderStoppedIsCaughtNotFatal() throws {
        let child = try helper("reload-stopped")
        #expect(try child.finish() == .exited(0), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        let v = child.values(in: .stdout)
        #expect(v["subscriptions_started"] == "1")
        #expect(v["subscriptions_after_stop"] == "0")
        #expect(v["watched"] == "true")
        #expect(v["delivered"] == "1")
        #expect(v["reloads"] == "0")
        #expect(v["alive"] == "true")
    }

    @Test(.timeLimit(.minutes(2)))
    func idleComponentsWakeNoThreadForTenSecondsThenEachAnswersItsSignal() throws {
        let child = try helper("idle")
        try child.waitForLine(containing: "READY", in: .stdout)
        try expectNoWakeUps(of: child.pid, over: .seconds(10),
                        threads: ["idle-helper", "signalcore", "shutdown", "reload", "stats", "dump"])

        #expect(kill(child.pid, SIGUSR1) == 0)
        let stats = try child.waitForLine(containing: "stats {", in: .stdout).line
        #expect(stats.contains("\"scenario\":\"idle\""), "\(stats)")
        #expect(stats.contains("\"SIGUSR1\":{\"received\":1,"), "\(stats)")
        #expect(kill(child.pid, SIGHUP) == 0)
        try child.waitForLine(containing: "reload applied generation 2", in: .stdout)
        #expect(kill(child.pid, SIGUSR2) == 0)
        let end = try child.waitForLine(containing: "=== end of thread dump", in: .stdout)
        let dump = child.lines[...end.index].filter { $0.hasPrefix("--- thread ") }
        // Each component's thread sleeps on its condition variable, so it can be interrupted; the dump is taken
        // on its own thread.
        for name in ["shutdown", "reload", "stats", "idle-helper"] {
            #expect(dump.contains { $0.contains("\"\(name)\"") && $0.contains(": captured,") }, "\(name): \(dump)")
        }
        #expect(dump.contains { $0.contains("\"dump\"") && $0.contains("captured (dumping thread)") }, "\(dump)")
        #expect(kill(child.pid, SIGTERM) == 0)
        let exit = try child.finish()
        #expect(exit == .signalled(SIGTERM), "\(child.lines)")
        #expect(child.failures.isEmpty, "\(child.failures)")
        #expect(child.lines.contains { $0.hasPrefix("transition draining(Optional(SIGTERM)") })
        #expect(child.lines.contains("draining signal=SIGTERM"))
        #expect(child.lines.filter { $0.hasPrefix("stats ") }.count == 1)
        #expect(child.lines.filter { $0.hasPrefix("reload ") }.count == 1)
    }

    @Test func statsLineIsOneJSONObjectAndEscapesStrings() throws {
        let reporter = StatsReporter(signals: [.sighup, .sigusr1])
        let line = reporter.line(counters: [("jobs_done", 3), ("name", "a \"quoted\"\nname"), ("pid", 1)])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["jobs_done"] as? Int == 3)
        #expect(object["name"] as? String == "a \"quoted\"\nname")
        #expect(object["pid"] as? Int == Int(getpid()))  // a reserved key is not overridden
        let signals = try #require(object["signals"] as? [String: Any])
        #expect(Set(signals.keys) == ["SIGHUP", "SIGUSR1"])
        #expect((signals["SIGHUP"] as? [String: Any])?["received"] as? Int == 0)
    }
}
