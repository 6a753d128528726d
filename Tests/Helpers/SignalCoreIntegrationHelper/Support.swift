#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

// Output protocol (the same as SignalCoreTestHelper's; `say`, `fail` and `HelperThread` come from
// ChildProcessTesting): one `key=value` line per fact, `READY` when the parent may start sending, `FAIL ...` for a
// check the helper made itself, exit status 0 when the scenario ran to its end.

@discardableResult
func must<T>(_ what: String, _ body: () throws -> T) -> T {
    do { return try body() } catch { fail("\(what): \(error)") }
}

/// Waits (bounded) until `condition` holds, re-checking it every 200 µs; fails the scenario on timeout.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { fail("timed out waiting for \(what)") }
        var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
        nanosleep(&pause, nil)
    }
}

/// The async form of ``waitUntil(_:timeout:_:)``: suspends instead of blocking a pool thread.
func waitUntilAsync(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { fail("timed out waiting for \(what)") }
        try? await Task.sleep(for: .microseconds(500))
    }
}

/// Runs async code from the synchronous main thread, bounded by `timeout`.
func runAsync(timeout: Duration = .seconds(60), _ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    let seconds = Int(timeout.components.seconds)
    if done.wait(timeout: .now() + .seconds(seconds)) == .timedOut { fail("async part timed out") }
}

/// Whether the engine watches every signal of `signals` now.
func engineWatches(_ signals: SignalSet) -> Bool {
    SignalEngine.shared.watchedSignals.isSuperset(of: signals)
}

/// The first argument after the scenario name.
func argument(_ index: Int) -> String? {
    let all = CommandLine.arguments
    return all.count > index + 1 ? all[index + 1] : nil
}
#endif
