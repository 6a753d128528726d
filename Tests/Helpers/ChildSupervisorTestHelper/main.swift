// ChildSupervisor scenarios that change process-wide signal state, each run in its own process by SignalRunTests.
// Usage: ChildSupervisorTestHelper <scenario> [arguments]
// Output: `key=value` facts on stdout, `FAIL ...` for a check made here; exit status 0 when the scenario ran to
// its end (`say` and `fail` come from ChildProcessTesting).
import ChildProcessTesting
import SignalCore
import SignalCoreLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Every reap the supervisor reports, in order.
let reaps = Mutex<[ChildExit]>([])
func supervisor(_ reaping: ChildSupervisor.Configuration.Reaping) -> ChildSupervisor {
    ChildSupervisor(configuration: .init(reaping: reaping)) { event in
        if case .reaped(let exit, _) = event { reaps.withLock { $0.append(exit) } }
    }
}

/// Starts `/bin/sh -c script` with plain posix_spawn, as code that knows nothing of the supervisor would.
func spawnPlainly(_ script: String) -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    do { try ChildProcessSignals.configureSpawnAttributes(&attributes) } catch { fail("\(error)") }
    let words: [String] = ["/bin/sh", "-c", script]
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let err = posix_spawn(&pid, "/bin/sh", nil, &attributes, argv, environ)
    if err != 0 { fail("posix_spawn: \(err)") }
    return pid
}

/// The state letter of process `pid` in /proc (nil when it does not exist).
func processState(_ pid: pid_t) -> Character? {
    let fd = open("/proc/\(pid)/stat", O_RDONLY)
    if fd < 0 { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = read(fd, &buffer, buffer.count)
    guard n > 0 else { return nil }
    let text = String(decoding: buffer[0..<n], as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(close, offsetBy: 2)]
}

/// Waits (bounded) for `condition`, looking again every 0.2 ms; fails the scenario on timeout.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { fail("timed out waiting for \(what)") }
        var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
        nanosleep(&pause, nil)
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: ChildSupervisorTestHelper <scenario> [arguments]") }

switch arguments[1] {
case "spawned-only":
    // A child that other code waits for by pid ends first and stays a zombie through a reaping pass that the
    // supervisor's own child triggers; then its owner reaps it.
    let supervisor = supervisor(.spawnedChildren)
    do { try supervisor.start() } catch { fail("start: \(error)") }
    let other = spawnPlainly("exit 5")
    waitUntil("the other child to be a zombie") { processState(other) == "Z" }
    let child: SupervisedChild
    do { child = try supervisor.spawn("/bin/sh", arguments: ["-c", "exit 7"]) } catch { fail("spawn: \(error)") }
    guard let exit = child.waitForExit(timeout: .seconds(20)) else { fail("no exit for the supervisor's child") }
    say("child=\(exit.termination == .exited(7) ? "exit7" : "\(exit)") child_pid_matches=\(exit.pid == child.pid)")
    say("other_state=\(processState(other).map(String.init) ?? "gone")")
    var status: CInt = 0
    let reaped = waitpid(other, &status, WNOHANG)
    say("other_reaped_by_owner=\(reaped == other) other_status=\((status >> 8) & 0xff)")
    say("reaps=\(reaps.withLock { $0.count })")
    do {
        try child.send(.sigterm)
        say("send_after_reap=sent")
    } catch {
        say("send_after_reap=\(error.errno == ESRCH ? "ESRCH" : "\(error)")")
    }
    supervisor.stop()
    say("engine_running_after_stop=\(SignalEngine.shared.isRunning)")

case "all-children":
    // Reaping every child: a child the supervisor did not spawn is reaped too, and reported as not spawned.
    let reported = Mutex<[(exit: ChildExit, spawned: Bool)]>([])
    let supervisor = ChildSupervisor(configuration: .init(reaping: .allChildren)) { event in
        if case .reaped(let exit, let spawned) = event { reported.withLock { $0.append((exit, spawned)) } }
    }
    do { try supervisor.start() } catch { fail("start: \(error)") }
    let other = spawnPlainly("exit 4")
    waitUntil("the supervisor to report the other child") { reported.withLock { !$0.isEmpty } }
    let (exit, spawned) = reported.withLock { $0[0] }
    say("reaped=\(exit.termination == .exited(4) && exit.pid == other ? "exit4" : "\(exit)") spawned=\(spawned)")
    var status: CInt = 0
    say("owner_waitpid=\(waitpid(other, &status, WNOHANG) < 0 && errno == ECHILD ? "ECHILD" : "found")")

case "burst":
    // N children spawned as fast as possible, all reaped, each exit reported once.
    let count = Int(arguments[2])!
    let supervisor = supervisor(.spawnedChildren)
    do { try supervisor.start() } catch { fail("start: \(error)") }
    var children: [SupervisedChild] = []
    for _ in 0..<count {
        do { children.append(try supervisor.spawn("/bin/true")) } catch { fail("spawn: \(error)") }
    }
    var exited = 0
    for child in children {
        guard let exit = child.waitForExit(timeout: .seconds(60)) else { fail("no exit for pid \(child.pid)") }
        if exit.termination == .exited(0) { exited += 1 }
    }
    let reported = reaps.withLock { $0 }
    let zombies = (0..<count).filter { processState(children[$0].pid) == "Z" }.count
    say("spawned=\(children.count) exited0=\(exited) reported=\(reported.count) distinct=\(Set(reported.map(\.pid)).count) running=\(supervisor.runningChildren.count) zombies=\(zombies)")

default:
    fail("unknown scenario \(arguments[1])")
}
