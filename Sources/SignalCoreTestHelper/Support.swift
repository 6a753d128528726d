import CSignalShim
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// Output protocol: one `key=value` line per fact; `READY` when the parent may start sending; a line that
/// starts with `FAIL` for a check the helper made itself. Exit status 0 when the scenario ran to its end.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ why: String) -> Never {
    say("FAIL \(why)")
    exit(1)
}

func check(_ condition: Bool, _ what: String) {
    if condition { say("PASS \(what)") } else { say("FAIL \(what)") }
}

@discardableResult
func must<T>(_ body: () throws -> T, _ what: String = #function) -> T {
    do { return try body() } catch { fail("\(what): \(error)") }
}

/// Waits (bounded) until `condition` holds, re-checking it; fails the scenario on timeout.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while !condition() {
        if clock.now > deadline { fail("timed out waiting for \(what)") }
        var ts = timespec(tv_sec: 0, tv_nsec: 200_000)
        nanosleep(&ts, nil)
    }
}

/// A plain pthread running `body`; returns once the thread exists.
final class HelperThread: @unchecked Sendable {
    var thread = pthread_t()
    let started = DispatchSemaphore(value: 0)
    let finish = DispatchSemaphore(value: 0)
    private(set) var tid: pid_t = 0
    let body: @Sendable (HelperThread) -> Void

    init(_ body: @escaping @Sendable (HelperThread) -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        let err = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<HelperThread>.fromOpaque(raw!).takeRetainedValue()
            me.tid = csignal_gettid()
            me.started.signal()
            me.body(me)
            return nil
        }, box)
        if err != 0 { fail("pthread_create: \(err)") }
        if started.wait(timeout: .now() + 10) == .timedOut { fail("thread did not start") }
    }

    func join() { pthread_join(thread, nil) }
}

/// Runs async code from the synchronous main thread, with a timeout.
func runAsync(timeout: Int = 30, _ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    if done.wait(timeout: .now() + .seconds(timeout)) == .timedOut { fail("async part timed out") }
}

func mainThreadBlocks(_ signal: Signal) -> Bool {
    var current = sigset_t()
    pthread_sigmask(SIG_BLOCK, nil, &current)
    return sigismember(&current, signal.rawValue) == 1
}

func threadCount() -> Int {
    (try? SignalEngine.shared.auditThreads().count) ?? -1
}

func describe(_ event: SignalEvent?) -> String {
    guard let e = event else { return "none" }
    return "signal=\(e.signal.rawValue) pid=\(e.senderPID) uid=\(e.senderUID) code=\(e.code) value=\(e.value) route=\(e.route) tid=\(e.threadID)"
}

/// Reads one line from standard input (the parent's go-ahead), bounded by the parent's own timeouts.
func readLine() -> String? { Swift.readLine(strippingNewline: true) }
