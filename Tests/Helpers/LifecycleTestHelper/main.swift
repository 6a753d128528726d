// Scenarios for the lifecycle patterns that change process-wide signal state, each run in its own process by
// LifecycleTests. Usage: LifecycleTestHelper <scenario> [arguments]
// Output: `key=value` facts on stdout, `FAIL ...` for a check made here; exit status as the scenario says
// (`say` and `fail` come from ChildProcessTesting, which the tests read the output with).
import CSignalShim
import ChildProcessTesting
import Dispatch
import Foundation
import SignalCore
import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#endif

struct Sample: Decodable, Sendable {
    var value: Int
}

func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { fail("open \(path): errno \(errno)") }
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: LifecycleTestHelper <scenario> [arguments]") }

switch arguments[1] {

// A burst of SIGHUPs during one (deliberately slow) reload leads to exactly one more reload.
case "reload-coalesce":
    let path = "/tmp/lifecycle-helper-\(getpid()).json"
    defer { unlink(path) }
    writeFile(path, "{\"value\": 1}")
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let calls = Counter()
    let reloader = ConfigReloader<Sample>(path: path, initial: Sample(value: 0), validate: { _ in
        // The first reload blocks until the parent of this scenario (the code below) has sent the burst.
        if calls.increment() == 1 {
            entered.signal()
            _ = release.wait(timeout: .now() + 20)
        }
    })
    do { try reloader.start() } catch { fail("start: \(error)") }
    let burst = Int(arguments.count > 2 ? arguments[2] : "5") ?? 5
    do { try SignalSender.raise(.sighup) } catch { fail("raise: \(error)") }
    if entered.wait(timeout: .now() + 10) == .timedOut { fail("first reload did not start") }
    // Standard signals coalesce in the kernel: send the next only after the previous one was handed to the
    // reloader, so that each one is a separate request.
    for k in 1...burst {
        do { try SignalSender.raise(.sighup) } catch { fail("raise: \(error)") }
        waitUntil("request \(k + 1)") { reloader.statistics.requests == UInt64(k + 1) }
    }
    say("during_reload_requests=\(reloader.statistics.requests) reloads_so_far=\(reloader.statistics.reloads)")
    release.signal()
    if !reloader.waitUntilIdle(timeout: .seconds(10)) { fail("reloader never idle") }
    let s = reloader.statistics
    say("requests=\(s.requests) reloads=\(s.reloads) applied=\(s.applied) coalesced=\(s.coalesced) generation=\(reloader.generation) value=\(reloader.config.value) validate_calls=\(calls.value)")
    // One more request after idle: a new reload, not coalesced.
    do { try SignalSender.raise(.sighup) } catch { fail("raise: \(error)") }
    waitUntil("reload after idle") { reloader.statistics.reloads == s.reloads + 1 }
    if !reloader.waitUntilIdle(timeout: .seconds(10)) { fail("reloader never idle") }
    say("final_reloads=\(reloader.statistics.reloads) final_generation=\(reloader.generation)")

// Missing, malformed and invalid files keep the old config, each with its reason; a good file applies.
case "reload-outcomes":
    let path = "/tmp/lifecycle-helper-\(getpid()).json"
    defer { unlink(path) }
    let reloader = ConfigReloader<Sample>(path: path, initial: Sample(value: 7), validate: { config in
        if config.value < 0 { throw ConfigRejection("value must not be negative, not \(config.value)") }
    })
    func attempt(_ label: String) {
        let outcome = reloader.reloadNow()
        say("\(label): generation=\(reloader.generation) value=\(reloader.config.value) outcome=\(outcome)")
    }
    attempt("missing")
    writeFile(path, "{\"value\": ")
    attempt("malformed")
    writeFile(path, "{\"other\": 1}")
    attempt("wrongkey")
    writeFile(path, "{\"value\": -3}")
    attempt("invalid")
    writeFile(path, "{\"value\": 42}")
    attempt("good")
    let s = reloader.statistics
    say("applied=\(s.applied) rejected=\(s.rejected)")

// The shutdown state: flips on the first SIGTERM from the parent, wakes a blocked thread and an async waiter,
// then finish() ends the process the configured way.
case "shutdown-state":
    let mode = ExitMode(rawValue: arguments.count > 2 ? arguments[2] : "reraise") ?? .reraise
    let shutdown = GracefulShutdown(configuration: .init(deadline: .seconds(30), exitMode: mode))
    do { try shutdown.start() } catch { fail("start: \(error)") }
    say("before is_shutting_down=\(shutdown.isShuttingDown) phase=\(shutdown.phase)")
    // Cost of the check, for the report.
    let clock = ContinuousClock()
    let checks = 10_000_000
    var seen = 0
    let t0 = clock.now
    for _ in 0..<checks where shutdown.isShuttingDown { seen += 1 }
    let per = (clock.now - t0) / checks
    say("check_ns=\(Double(per.components.attoseconds) / 1e9) seen=\(seen)")

    let threadWoke = DispatchSemaphore(value: 0)
    let blocked = Thread { if shutdown.wait(for: .draining, timeout: .seconds(30)) { threadWoke.signal() } }
    blocked.start()
    let asyncWoke = DispatchSemaphore(value: 0)
    Task.detached {
        await shutdown.waitFor(.draining)
        asyncWoke.signal()
    }
    say("READY")
    if threadWoke.wait(timeout: .now() + 30) == .timedOut { fail("blocked thread did not wake") }
    if asyncWoke.wait(timeout: .now() + 30) == .timedOut { fail("async waiter did not wake") }
    say("after is_shutting_down=\(shutdown.isShuttingDown) phase=\(shutdown.phase) signal=\(shutdown.signal?.description ?? "none") cancelled=\(shutdown.isCancelled)")
    shutdown.finish()

// The deadline: after the first SIGTERM nobody finishes; onCancel runs, then the monitor ends the process.
case "shutdown-deadline":
    let shutdown = GracefulShutdown(configuration: .init(deadline: .milliseconds(300), cancellationGrace: .milliseconds(200)),
                                    observer: { say("transition \($0)") })
    shutdown.onCancel { say("cancel handler ran phase=\(shutdown.phase)") }
    do { try shutdown.start() } catch { fail("start: \(error)") }
    say("READY")
    // Work that ignores everything but cancellation, bounded.
    if !shutdown.wait(for: .cancelled, timeout: .seconds(30)) { fail("never cancelled") }
    say("worker saw cancellation")
    // Park: the monitor must end the process after the grace.
    let forever = DispatchSemaphore(value: 0)
    _ = forever.wait(timeout: .now() + 30)
    fail("still alive after the grace period")

// The same signal from the same sender within the duplicate window is ignored; from another sender it is a
// second signal and ends the process.
case "shutdown-duplicate":
    let shutdown = GracefulShutdown(configuration: .init(deadline: .seconds(60), duplicateWindow: .seconds(20)),
                                    observer: { say("transition \($0)") })
    do { try shutdown.start() } catch { fail("start: \(error)") }
    say("READY")
    let forever = DispatchSemaphore(value: 0)
    _ = forever.wait(timeout: .now() + 60)
    fail("still alive")

// A dump of this process: plain threads, one that blocks SIGRTMAX, and the caller.
case "dump":
    do { try SignalEngine.shared.watch([.sigusr1]) } catch { fail("watch: \(error)") }
    guard let internalSignal = Signal.engineInternal else { fail("the engine runs but has no internal signal") }
    var fds: [CInt] = [0, 0]
    pipe(&fds)
    let readEnd = fds[0]
    let ready = DispatchSemaphore(value: 0)
    var threads: [Thread] = []
    for i in 0..<3 {
        let t = Thread {
            csignal_set_thread_name("parked-\(i)")
            ready.signal()
            var byte: UInt8 = 0
            _ = read(readEnd, &byte, 1)
        }
        threads.append(t)
        t.start()
    }
    let blockerTID = Counter()
    let blocker = Thread {
        _ = blockerTID.set(Int(csignal_gettid()))
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, internalSignal.rawValue)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        csignal_set_thread_name("rtmax-blocker")
        ready.signal()
        var byte: UInt8 = 0
        _ = read(readEnd, &byte, 1)
    }
    blocker.start()
    for _ in 0..<4 where ready.wait(timeout: .now() + 10) == .timedOut { fail("threads did not start") }
    // Each thread signals before it calls read(): wait until the blocker sleeps in it (system call 0).
    waitUntil("blocker in read") {
        let text = (try? String(contentsOfFile: "/proc/self/task/\(blockerTID.value)/syscall", encoding: .utf8)) ?? ""
        return text.hasPrefix("0 ")
    }
    let dump: ThreadDump
    do { dump = try ThreadDump.capture() } catch { fail("capture: \(error)") }
    let listed = (try? SignalEngine.shared.auditThreads()) ?? []
    say(dump.description)
    say("threads_in_dump=\(dump.threads.count) threads_now=\(listed.count) read_method=\(dump.readMethod)")
    for t in dump.threads {
        say("thread tid=\(t.threadID) name=\(t.name) status=\(String(describing: t.status).split(separator: ":").first ?? "") frames=\(t.frames.count)")
    }
    say("capture_us=\(Double(dump.captureDuration.components.attoseconds) / 1e12 + Double(dump.captureDuration.components.seconds) * 1e6)")
    let write = fds[1]
    for _ in 0..<4 { var b: UInt8 = 1; _ = Glibc.write(write, &b, 1) }
    // A second dump right after: the slots and the table are reusable.
    do { _ = try ThreadDump.capture() } catch { fail("second capture: \(error)") }
    say("second_dump=ok")

// A shutdown requested from code: the monitor notices at once (it sleeps with no timeout, so nothing else would
// wake it), the drain handler runs with the phase already changed, the deadline passes, and after the grace the
// monitor ends the process with status 1 (no signal asked for the stop).
case "shutdown-request":
    let clock = ContinuousClock()
    let shutdown = GracefulShutdown(configuration: .init(deadline: .milliseconds(300), cancellationGrace: .milliseconds(200)),
                                    observer: { say("transition \($0)") })
    shutdown.onDraining { say("drain handler ran phase=\(shutdown.phase)") }
    shutdown.onCancel { say("cancel handler ran phase=\(shutdown.phase)") }
    do { try shutdown.start() } catch { fail("start: \(error)") }
    let requested = clock.now
    shutdown.requestShutdown()
    say("requested phase=\(shutdown.phase) signal=\(shutdown.signal?.description ?? "none")")
    if !shutdown.wait(for: .cancelled, timeout: .seconds(30)) { fail("never cancelled") }
    say("cancelled_after_ms=\(milliseconds(clock.now - requested))")
    // Park: the monitor must end the process after the grace.
    let forever = DispatchSemaphore(value: 0)
    _ = forever.wait(timeout: .now() + 30)
    fail("still alive after the grace period")

// The engine's claim rule, seen from a component: after the reloader stops, its subscription is gone, but SIGHUP
// stays caught (counted, answered by nobody) instead of going back to its default action, which would end the
// process.
case "reload-stopped":
    let path = "/tmp/lifecycle-helper-\(getpid()).json"
    defer { unlink(path) }
    writeFile(path, "{\"value\": 1}")
    let reloader = ConfigReloader<Sample>(path: path, initial: Sample(value: 0))
    do { try reloader.start() } catch { fail("start: \(error)") }
    say("subscriptions_started=\(SignalEngine.shared.subscriptionCount)")
    reloader.stop()
    waitUntil("the reloader's subscription to end") { SignalEngine.shared.subscriptionCount == 0 }
    do { try SignalSender.raise(.sighup) } catch { fail("raise: \(error)") }
    waitUntil("the SIGHUP to be counted") { SignalEngine.shared.counts(for: .sighup).delivered == 1 }
    say("subscriptions_after_stop=\(SignalEngine.shared.subscriptionCount) watched=\(SignalEngine.shared.watchedSignals.contains(.sighup)) delivered=\(SignalEngine.shared.counts(for: .sighup).delivered) reloads=\(reloader.statistics.reloads) alive=true")

// GracefulShutdown, ConfigReloader, StatsReporter and ThreadDump together, idle until the parent has measured
// the threads' wake-ups; then each answers its signal once, and SIGTERM ends the process.
case "idle":
    csignal_set_thread_name("idle-helper")
    let path = "/tmp/lifecycle-helper-\(getpid()).json"
    writeFile(path, "{\"value\": 1}")
    let shutdown = GracefulShutdown(configuration: .init(deadline: .seconds(30)), observer: { say("transition \($0)") })
    let reloader = ConfigReloader<Sample>(path: path, initial: Sample(value: 0), observer: { say("reload \($0)") })
    let reporter = StatsReporter(signals: [.sighup, .sigusr1, .sigusr2, .sigterm])
    do {
        try shutdown.start()
        try reloader.start()
        _ = try reporter.start(on: .sigusr1, counters: { [("scenario", "idle")] }, write: { say("stats \($0)") })
        _ = try ThreadDump.start(on: .sigusr2, write: { say($0) })
    } catch {
        fail("start: \(error)")
    }
    say("READY")
    // The main thread parks too: one timer, due long after the measurement.
    if !shutdown.wait(for: .draining, timeout: .seconds(120)) { fail("no shutdown within 120 s") }
    unlink(path)
    say("draining signal=\(shutdown.signal?.description ?? "none")")
    shutdown.finish()

default:
    fail("unknown scenario \(arguments[1])")
}

/// A thread-safe counter for the scenarios.
final class Counter: @unchecked Sendable {
    private var count = 0
    private let lock = DispatchSemaphore(value: 1)
    func set(_ value: Int) -> Int {
        lock.wait()
        defer { lock.signal() }
        count = value
        return count
    }
    func increment() -> Int {
        lock.wait()
        defer { lock.signal() }
        count += 1
        return count
    }
    var value: Int {
        lock.wait()
        defer { lock.signal() }
        return count
    }
}
