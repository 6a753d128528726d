import ChildProcessTesting
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

// Output protocol (`say`, `fail`, `check`, `HelperThread` come from ChildProcessTesting, which the tests read it with): one
// `key=value` line per fact; `READY` when the parent may start sending; a line that starts with `FAIL` for a check
// the helper made itself. Exit status 0 when the scenario ran to its end.

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
