import CSignalShim
import CSignalVerifySupport
import ChildProcessTesting
import Foundation
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// The signals the process scenarios watch: all of them kill a process by default.
let processWatched: SignalSet = [.sigterm, .sigint, .sighup, .sigusr1, .sigusr2, .realtime(0)]

/// fork() while the engine runs: what the child sees, with and without prepareChildProcess(), and that it can
/// be killed by SIGTERM or exec a program that can.
func scenarioFork() {
    let engine = SignalEngine.shared
    must { try engine.start(watching: processWatched) }
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    must { try SignalSender.raise(.sigusr1) }
    if subscription.next(timeout: .seconds(10)) == nil { fail("SIGUSR1 before fork not seen") }
    let term = bit(.sigterm)

    func report(_ label: String, prepare: Bool, signo: CInt, then: CInt) -> (pid_t, csv_child_report) {
        var fd: CInt = -1
        let pid = csv_fork_child(prepare, signo, then, &fd)
        if pid < 0 { fail("\(label): fork: errno \(-pid)") }
        var r = csv_child_report()
        let err = csv_read_child_report(fd, &r, 10_000)
        close(fd)
        if err != 0 { fail("\(label): child report: errno \(err)") }
        say("\(label) prepare=\(r.prepare_result) running_before=\(r.running_before) running_after=\(r.running_after) waiter_after=\(r.waiter_tid_after) blocked_before=\(hex(r.blocked_before)) blocked_after=\(hex(r.blocked_after)) disposition_after=\(r.disposition_after) threads=\(r.thread_count) delivered_at_fork=\(r.delivered_at_fork)")
        return (pid, r)
    }

    // 1. Without prepareChildProcess: the child inherits the running engine's state and the blocked mask.
    let (plain, plainReport) = report("fork_plain", prepare: false, signo: SIGUSR1, then: CInt(CSV_CHILD_EXIT))
    check(plainReport.running_before == 1 && plainReport.blocked_before & term != 0 && plainReport.thread_count == 1,
          "plain fork child: one thread, engine state copied as running, SIGTERM blocked (why prepare exists)")
    check(reap(plain) == "exit=0", "plain fork child exits normally")

    // 2. prepareChildProcess, then SIGTERM from the parent: the default action kills the child.
    let (killed, killedReport) = report("fork_prepared", prepare: true, signo: SIGTERM, then: CInt(CSV_CHILD_WAIT_KILL))
    check(killedReport.prepare_result == 0 && killedReport.running_after == 0 && killedReport.waiter_tid_after == 0,
          "prepared child: engine reports not running, no wait thread")
    check(killedReport.blocked_after & processWatched.rawMaskForVerify == 0, "prepared child: watched signals unblocked")
    check(killedReport.disposition_after == CInt(CSIGNAL_DISP_DEFAULT), "prepared child: SIGTERM back to SIG_DFL")
    kill(killed, SIGTERM)
    let killedExit = reap(killed)
    say("fork_prepared_exit \(killedExit)")
    check(killedExit == "signal=15", "prepared child dies by SIGTERM")

    // 3. prepareChildProcess, then exec: the new program starts clean and SIGTERM ends it.
    let (execd, execReport) = report("fork_exec", prepare: true, signo: SIGUSR1, then: CInt(CSV_CHILD_EXEC_SLEEP))
    check(execReport.delivered_at_fork == 1, "child keeps the counters it had at the fork")
    waitUntil("the forked child to exec sleep") { commandName(execd) == "sleep" }
    let masks = procMasks(execd)
    say("fork_exec_status SigBlk=\(hex(masks?.blocked ?? 0)) SigIgn=\(hex(masks?.ignored ?? 0))")
    check(masks.map { $0.blocked & processWatched.rawMaskForVerify == 0 && $0.ignored & processWatched.rawMaskForVerify == 0 } ?? false,
          "exec'd child: watched signals neither blocked nor ignored")
    kill(execd, SIGTERM)
    check(reap(execd) == "signal=15", "exec'd child dies by SIGTERM")

    // 4. In the parent, prepareChildProcess refuses and changes nothing.
    do {
        try engine.prepareChildProcess()
        check(false, "parent: prepareChildProcess refused", detail: "accepted")
    } catch {
        check(error == .notInForkedChild, "parent: prepareChildProcess refused",
              detail: "\(error)")
    }
    must { try SignalSender.raise(.sigusr1) }
    check(subscription.next(timeout: .seconds(10)) != nil && engine.isRunning, "parent engine still works after the forks")
    must { try engine.stop() }
}

func commandName(_ pid: pid_t) -> String {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return "" }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension SignalSet {
    /// Bit n-1 for each member n (the kernel's /proc format).
    var rawMaskForVerify: UInt64 { reduce(0) { $0 | bit($1) } }
}

/// Checks a freshly started `/bin/sleep 60` (pid) and ends it with SIGTERM. `expectClean`: the spawner claims
/// to reset the mask; otherwise the hazard is shown (SIGTERM stays pending) and the child is killed by SIGKILL.
/// Returns how it ended.
func inspectAndTerminate(_ label: String, _ pid: pid_t, reap: (pid_t) -> String) -> (clean: Bool, ended: String) {
    waitUntil("\(label): the child to exec sleep") { commandName(pid) == "sleep" }
    guard let masks = procMasks(pid) else { fail("\(label): no /proc status for \(pid)") }
    let watched = processWatched.rawMaskForVerify
    let clean = masks.blocked & watched == 0 && masks.ignored & watched == 0
    say("\(label) pid=\(pid) SigBlk=\(hex(masks.blocked)) SigIgn=\(hex(masks.ignored)) clean=\(clean ? 1 : 0)")
    kill(pid, SIGTERM)
    if !clean {
        // kill() made SIGTERM pending before it returned; blocked, it stays pending and the child lives on.
        let pending = pendingSignals(pid)
        say("\(label)_pending=\(hex(pending)) term_pending=\(pending & bit(.sigterm) != 0 ? 1 : 0)")
        kill(pid, SIGKILL)
    }
    let ended = reap(pid)
    say("\(label)_ended \(ended)")
    return (clean, ended)
}

/// ShdPnd | SigPnd of a process.
func pendingSignals(_ pid: pid_t) -> UInt64 {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    var result: UInt64 = 0
    for line in text.split(separator: "\n") where line.hasPrefix("ShdPnd:") || line.hasPrefix("SigPnd:") {
        result |= UInt64(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
    }
    return result
}

func spawnSleep(_ configure: Bool) -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    if configure { must { try ChildProcessSignals.configureSpawnAttributes(&attributes) } }
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("60"), nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let err = posix_spawn(&pid, "/bin/sleep", nil, &attributes, argv, environ)
    if err != 0 { fail("posix_spawn: \(err)") }
    return pid
}

/// A program started by a process that runs the engine: posix_spawn and Foundation.Process, each without and
/// with SignalCore's remedy.
func scenarioSpawn() {
    let engine = SignalEngine.shared
    must { try engine.start(watching: processWatched) }

    let plain = inspectAndTerminate("posix_spawn_plain", spawnSleep(false)) { reap($0) }
    check(!plain.clean && plain.ended == "signal=9", "plain posix_spawn: child inherits the blocked mask (the hazard)")
    let fixed = inspectAndTerminate("posix_spawn_attrs", spawnSleep(true)) { reap($0) }
    check(fixed.clean && fixed.ended == "signal=15", "posix_spawn with configureSpawnAttributes: clean, SIGTERM ends it")

    func runProcess(_ label: String, wrapped: Bool) -> (clean: Bool, ended: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["60"]
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        do {
            if wrapped { try ChildProcessSignals.withWatchedSignalsUnblocked { try process.run() } }
            else { try process.run() }
        } catch { fail("\(label): Process.run: \(error)") }
        let result = inspectAndTerminate(label, process.processIdentifier) { _ in
            if done.wait(timeout: .now() + 20) == .timedOut { return "timeout" }
            return process.terminationReason == .uncaughtSignal ? "signal=\(process.terminationStatus)"
                                                                 : "exit=\(process.terminationStatus)"
        }
        process.terminationHandler = nil
        return result
    }
    let process = runProcess("foundation_process_plain", wrapped: false)
    say("foundation_process_plain_inherits_mask=\(process.clean ? 0 : 1)")
    let wrapped = runProcess("foundation_process_wrapped", wrapped: true)
    check(wrapped.clean && wrapped.ended == "signal=15",
          "Foundation.Process inside withWatchedSignalsUnblocked: clean, SIGTERM ends it")
    check(mainThreadBlocksAll(processWatched), "the spawning thread blocks the watched signals again afterwards")
    check(auditAllBlocked("after_spawns"), "every thread still blocks the watched signals")
    must { try engine.stop() }
}

func mainThreadBlocksAll(_ set: SignalSet) -> Bool {
    var current = sigset_t()
    pthread_sigmask(SIG_BLOCK, nil, &current)
    return set.allSatisfy { sigismember(&current, $0.rawValue) == 1 }
}
