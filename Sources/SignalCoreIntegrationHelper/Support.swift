#if ServiceLifecycleIntegration && TelemetryIntegration
import CSignalShim
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

// Output protocol (the same as SignalCoreTestHelper's): one `key=value` line per fact, `READY` when the parent
// may start sending, `FAIL ...` for a check the helper made itself, exit status 0 when the scenario ran to its
// end.

func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ why: String) -> Never {
    say("FAIL \(why)")
    exit(1)
}

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

/// A plain pthread running `body`; returns once the thread runs and knows its kernel thread id.
final class HelperThread: @unchecked Sendable {
    // @unchecked: `tid` is written once by the new thread before `started` is signalled, then only read.
    private var thread = pthread_t()
    private let started = DispatchSemaphore(value: 0)
    let finish = DispatchSemaphore(value: 0)
    private(set) var tid: pid_t = 0
    private let body: @Sendable (HelperThread) -> Void

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
