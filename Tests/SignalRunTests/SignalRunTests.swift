import ChildProcessTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// signal-run as PID 1 of a new PID namespace, with real processes: exit statuses, orphans, signals from outside
/// the namespace, the grace period, a burst of a thousand orphans, and an idle signal-run.
@Suite("signal-run as PID 1")
struct SignalRunTests {
    /// Bounds every scenario: a broken build fails here instead of hanging.
    static let timeout = Duration.seconds(90)

    /// The `--verbose` lines of a run whose COMMAND (pid `pid`) ends `how` and nothing else happens.
    static func plainRun(pid: Int, scenario: [String], how: String, status: Int) -> [String] {
        [
            "signal-run: started pid \(pid) in process group \(pid): \(SignalRunProcess.fixture) \(scenario.joined(separator: " "))",
            "signal-run: reaped pid \(pid) (COMMAND): \(how)",
            "signal-run: COMMAND ended; exiting with status \(status)",
        ]
    }

    static func orphanReaps(in lines: [String]) -> [String] {
        lines.filter { $0.hasPrefix("signal-run: reaped pid ") && $0.hasSuffix(" (orphan): exited with status 0") }
    }

    @Test("exits with COMMAND's status, or 128+n when signal n ended it", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"),
          arguments: [
              (["exit", "0"], 0, "exited with status 0"),
              (["exit", "3"], 3, "exited with status 3"),
              (["exit", "255"], 255, "exited with status 255"),
              (["die", "USR1"], 138, "killed by SIGUSR1"),
              (["die", "KILL"], 137, "killed by SIGKILL"),
          ])
    func exitStatus(scenario: [String], status: Int, how: String) throws {
        let run = try SignalRunProcess(scenario: scenario)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(CInt(status)), "\(run.errorLines)")
        #expect(run.lines == ["zombies=0"])
        let pid = try #require(Int(run.errorLines.first?.split(separator: " ")[3] ?? ""), "\(run.errorLines)")
        #expect(run.errorLines == SignalRunTests.plainRun(pid: pid, scenario: scenario, how: how, status: status))
    }

    @Test("reaps orphans reparented to it: no zombie left in the namespace", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func orphans() throws {
        let run = try SignalRunProcess(scenario: ["orphans", "5"])
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(0), "\(run.errorLines)")
        #expect(run.lines == ["orphans=5 reaped=5 zombies=0"])
        let reaps = SignalRunTests.orphanReaps(in: run.errorLines)
        #expect(reaps.count == 5, "\(run.errorLines)")
        #expect(Set(reaps).count == 5)
        #expect(run.errorLines.count == 5 + 3, "\(run.errorLines)")
    }

    @Test("reaps a burst of 1000 orphans that end at once", .timeLimit(.minutes(3)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func burst() throws {
        let run = try SignalRunProcess(scenario: ["burst", "1000"])
        let exit = try run.finish(within: .seconds(150))
        #expect(exit == .exited(0), "\(run.errorLines.suffix(5))")
        #expect(run.lines == ["orphans=1000 reaped=1000 zombies=0"])
        let reaps = SignalRunTests.orphanReaps(in: run.errorLines)
        #expect(reaps.count == 1000)
        #expect(Set(reaps).count == 1000)
    }

    @Test("SIGTERM sent from outside the namespace reaches COMMAND, which exits its own way",
          .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func sigtermFromOutside() throws {
        let run = try SignalRunProcess(scenario: ["term-trap", "42"])
        try run.awaitStdout("ready")
        let pid = try run.commandPID()
        try run.signalSupervisor(SIGTERM)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(42), "\(run.errorLines)")
        #expect(run.lines == ["ready", "got=SIGTERM zombies=0"])
        var expected = SignalRunTests.plainRun(pid: pid, scenario: ["term-trap", "42"], how: "exited with status 42",
                                               status: 42)
        expected.insert("signal-run: forwarded SIGTERM to pid \(pid)", at: 1)
        #expect(run.errorLines == expected)
    }

    @Test("a forwarded SIGTERM that ends COMMAND by its default action: 143", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func sigtermDefaultAction() throws {
        let run = try SignalRunProcess(scenario: ["term-default"])
        try run.awaitStdout("ready zombies=0")
        let pid = try run.commandPID()
        try run.signalSupervisor(SIGTERM)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(143), "\(run.errorLines)")
        var expected = SignalRunTests.plainRun(pid: pid, scenario: ["term-default"], how: "killed by SIGTERM",
                                               status: 143)
        expected.insert("signal-run: forwarded SIGTERM to pid \(pid)", at: 1)
        #expect(run.errorLines == expected)
    }

    @Test("--forward-to group: the signal reaches every process in COMMAND's group", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func groupForwarding() throws {
        let run = try SignalRunProcess(["--verbose", "--forward-to", "group"], scenario: ["group-term", "7"])
        try run.awaitStdout("ready")
        try run.awaitStdout("grandchild=ready")
        let pid = try run.commandPID()
        try run.signalSupervisor(SIGTERM)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(7), "\(run.errorLines)")
        // COMMAND waits for its grandchild, which only ends on a SIGTERM of its own.
        #expect(Set(run.lines.prefix(2)) == ["ready", "grandchild=ready"])
        #expect(run.lines.dropFirst(2) == ["grandchild=SIGTERM", "got=SIGTERM zombies=0"])
        var expected = SignalRunTests.plainRun(pid: pid, scenario: ["group-term", "7"], how: "exited with status 7",
                                               status: 7)
        expected.insert("signal-run: forwarded SIGTERM to process group \(pid)", at: 1)
        #expect(run.errorLines == expected)
    }

    @Test("--grace: SIGKILL to COMMAND's process group when it outlives a forwarded SIGTERM", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func graceEscalation() throws {
        let run = try SignalRunProcess(["--verbose", "--grace", "0.5"], scenario: ["term-ignore"])
        try run.awaitStdout("ready zombies=0")
        let pid = try run.commandPID()
        let sent = ContinuousClock.now
        try run.signalSupervisor(SIGTERM)
        let exit = try run.finish(within: SignalRunTests.timeout)
        let took = ContinuousClock.now - sent
        #expect(exit == .exited(137), "\(run.errorLines)")
        #expect(took >= .milliseconds(500), "SIGKILL came \(took) after SIGTERM")
        var expected = SignalRunTests.plainRun(pid: pid, scenario: ["term-ignore"], how: "killed by SIGKILL",
                                               status: 137)
        expected.insert(contentsOf: [
            "signal-run: forwarded SIGTERM to pid \(pid)",
            "signal-run: grace period of 0.5 s over: SIGKILL to process group \(pid)",
        ], at: 1)
        #expect(run.errorLines == expected)
    }

    @Test("an idle signal-run wakes up no thread", .timeLimit(.minutes(2)),
          .enabled(if: PIDNamespace.isAvailable, "this machine forbids a new PID namespace (unshare --pid --fork true failed)"))
    func idle() throws {
        let run = try SignalRunProcess(scenario: ["term-default"])
        try run.awaitStdout("ready zombies=0")
        _ = try run.commandPID()
        let supervisor = try run.supervisorPID()
        let before = ProcStat.contextSwitches(of: supervisor)
        // The measurement window: two seconds in which nothing is sent to signal-run or its COMMAND.
        var window = timespec(tv_sec: 2, tv_nsec: 0)
        var left = timespec()
        while nanosleep(&window, &left) != 0 && errno == EINTR { window = left }
        let after = ProcStat.contextSwitches(of: supervisor)
        try run.signalSupervisor(SIGTERM)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(143))
        #expect(before.count == 3, "threads: \(before)")  // main, the engine's wait thread, the supervisor
        #expect(after == before, "context switches per thread, before \(before), after \(after)")
    }
}

/// signal-run without a PID namespace: the subreaper, and what it does when COMMAND cannot start.
@Suite("signal-run outside a PID namespace")
struct SignalRunHostTests {
    @Test("--subreaper: orphans are reparented to signal-run and reaped", .timeLimit(.minutes(2)))
    func subreaper() throws {
        let run = try SignalRunProcess(["--verbose", "--subreaper"], scenario: ["orphans", "5"], inNamespace: false)
        let exit = try run.finish(within: SignalRunTests.timeout)
        #expect(exit == .exited(0), "\(run.errorLines)")
        #expect(run.lines == ["orphans=5 reaped=5 zombies=0"])
        #expect(SignalRunTests.orphanReaps(in: run.errorLines).count == 5, "\(run.errorLines)")
        #expect(run.errorLines.count == 5 + 3, "\(run.errorLines)")
    }

    @Test("in a terminal's foreground, COMMAND's process group takes the terminal over", .timeLimit(.minutes(1)),
          .enabled(if: access("/usr/bin/script", X_OK) == 0, "needs script(1) (util-linux) for a pseudo-terminal"))
    func terminal() throws {
        // script(1) runs signal-run as the session leader of a new pseudo-terminal, in its foreground group.
        let command = "\(SignalRunProcess.signalRun) -- \(SignalRunProcess.fixture) terminal"
        let run = try SpawnedProcess("/usr/bin/script", ["-qec", command, "/dev/null"], standardError: .separate)
        let exit = try run.finish(timeout: SignalRunTests.timeout)
        #expect(exit == .exited(0), "\(run.lines)")
        let line = try #require(run.lines.map { $0.trimmingCharacters(in: ["\r"]) }.first { $0.hasPrefix("pid=") })
        let fields = Dictionary(uniqueKeysWithValues: line.split(separator: " ").map {
            ($0.split(separator: "=")[0], $0.split(separator: "=")[1])
        })
        #expect(fields["pgid"] == fields["pid"], "\(line)")
        #expect(fields["tpgid"] == fields["pid"], "\(line)")
    }

    @Test("COMMAND not found: 127; not executable: 126", .timeLimit(.minutes(1)),
          arguments: [("/nonexistent/program", 127, "No such file or directory (errno: 2)"),
                      ("/", 126, "Permission denied (errno: 13)")])
    func cannotRun(command: String, status: Int, why: String) throws {
        let run = try SpawnedProcess(SignalRunProcess.signalRun, ["--", command], standardError: .separate)
        let exit = try run.finish(timeout: SignalRunTests.timeout)
        #expect(exit == .exited(CInt(status)))
        #expect(run.errorLines == ["signal-run: cannot run \(command): posix_spawnp: \(why)"])
    }

    @Test("a bad command line: 64 and the usage line", .timeLimit(.minutes(1)),
          arguments: [[], ["--forward-to", "sideways", "--", "true"], ["-x", "true"]])
    func badCommandLine(arguments: [String]) throws {
        let run = try SpawnedProcess(SignalRunProcess.signalRun, arguments, standardError: .separate)
        let exit = try run.finish(timeout: SignalRunTests.timeout)
        #expect(exit == .exited(64))
        #expect(run.errorLines.count == 2, "\(run.errorLines)")
        #expect(run.errorLines.last == "Usage: signal-run [OPTIONS] [--] COMMAND [ARGS...] (signal-run --help for more)")
    }
}
