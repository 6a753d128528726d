import CSignalShim
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

// The helper executables' end of the output protocol that SpawnedProcess reads: one `key=value` line per fact,
// `READY` when the parent may start sending, `FAIL …` for a check the helper made itself, exit status 0 when the
// scenario ran to its end.

/// Writes one line of output and flushes it at once, so that the parent sees it before anything that follows.
public func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Reports a failed check as `FAIL <why>` and ends the helper with exit status 1.
public func fail(_ why: String) -> Never {
    say("FAIL \(why)")
    exit(1)
}

/// Reports a check the helper made itself: `PASS <what>` when `condition` holds, `FAIL <what>` otherwise, followed
/// by ` -- <detail>` when there is one. The tests name the checks they expect by `what`
/// (``SpawnedProcess/unmetChecks(_:)``), so `what` stays the same from run to run; what varies goes in `detail`.
public func check(_ condition: Bool, _ what: String, detail: String = "") {
    say((condition ? "PASS " : "FAIL ") + what + (detail.isEmpty ? "" : " -- " + detail))
}

/// Runs `body` and returns its result; a thrown error ends the helper as a failed check named `what` (by default,
/// the calling function).
@discardableResult
public func must<T>(_ what: String = #function, _ body: () throws -> T) -> T {
    do { return try body() } catch { fail("\(what): \(error)") }
}

/// Waits until `condition` holds, re-checking it every 200 µs; ends the helper as failed after `timeout`.
public func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { fail("timed out waiting for \(what)") }
        var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
        nanosleep(&pause, nil)
    }
}

/// ``waitUntil(_:timeout:_:)`` for async code: suspends between checks instead of blocking a thread.
public func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { fail("timed out waiting for \(what)") }
        try? await Task.sleep(for: .microseconds(500))
    }
}

/// Runs async code from the synchronous main thread; ends the helper as failed after `timeout`.
public func runAsync(timeout: Duration = .seconds(60), _ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    if done.wait(timeout: .now() + .seconds(Int(timeout.components.seconds))) == .timedOut { fail("async part timed out") }
}

/// The helper's command-line argument `index`: 0 is the scenario's name, 1 the first argument after it.
public func argument(_ index: Int) -> String? {
    let all = CommandLine.arguments
    return all.count > index + 1 ? all[index + 1] : nil
}

/// ``argument(_:)`` as a number, or `value` when it is missing or not a number.
public func argument(_ index: Int, default value: Int) -> Int { argument(index).flatMap { Int($0) } ?? value }

/// `duration` in whole milliseconds.
public func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
}

/// A plain pthread running `body`; the initializer returns once the thread runs and knows its kernel thread id.
public final class HelperThread: @unchecked Sendable {
    // @unchecked: `tid` is written once by the new thread before `started` is signalled, then only read.
    private var thread = pthread_t()
    private let started = DispatchSemaphore(value: 0)
    /// For the body to wait on until the scenario lets it end.
    public let finish = DispatchSemaphore(value: 0)
    /// The thread's kernel id (gettid).
    public private(set) var tid: pid_t = 0
    private let body: @Sendable (HelperThread) -> Void

    public init(_ body: @escaping @Sendable (HelperThread) -> Void) {
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

    /// Waits for the thread to end (`pthread_join`).
    public func join() { pthread_join(thread, nil) }

    /// A thread that unblocks `signal`, so that a delivery aimed at it runs the engine's fallback handler there,
    /// and then waits until ``finish`` is signalled (at most `timeout`). Returns once the signal is unblocked.
    public static func unblocking(_ signal: CInt, timeout: Duration = .seconds(60)) -> HelperThread {
        let unblocked = DispatchSemaphore(value: 0)
        let thread = HelperThread { me in
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, signal)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            unblocked.signal()
            _ = me.finish.wait(timeout: .now() + .seconds(Int(timeout.components.seconds)))
        }
        if unblocked.wait(timeout: .now() + 10) == .timedOut { fail("thread did not unblock signal \(signal)") }
        return thread
    }
}

/// A plain pthread running `body` until it returns; ``join()`` waits for it. (``HelperThread`` also reports the
/// thread's kernel id and waits for it to start.)
public final class PlainThread: @unchecked Sendable {
    // @unchecked: `thread` is written once by pthread_create before anyone can call join.
    private var thread = pthread_t()
    private let body: @Sendable () -> Void

    public init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        let err = pthread_create(&thread, nil, { raw in
            Unmanaged<PlainThread>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        if err != 0 { fail("pthread_create: \(err)") }
    }

    public func join() { pthread_join(thread, nil) }
}

