import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A child process started by ``ChildSupervisor/spawn(_:arguments:environment:searchPath:foregroundTerminal:)``:
/// its pid, its exit once the supervisor reaped it, and a safe way to signal it.
public final class SupervisedChild: Sendable, CustomStringConvertible {
    /// The child's process id. It is also the id of the child's process group.
    public let pid: pid_t
    private let supervisor: ChildSupervisor

    private struct State {
        var exit: ChildExit?
        /// The supervisor stopped before reaping it (or someone else reaped it): no exit will come.
        var abandoned = false
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: UnsafeContinuation<ChildExit?, Never>] = [:]
    }

    private let state = Mutex(State())

    init(pid: pid_t, supervisor: ChildSupervisor) {
        self.pid = pid
        self.supervisor = supervisor
    }

    /// How the child ended, once the supervisor reaped it; nil while it runs.
    public var reapedExit: ChildExit? { state.withLock { $0.exit } }

    /// Suspends until the supervisor reaps the child, and returns how it ended. Returns nil when the waiting
    /// task is cancelled, or when the supervisor stopped before the child ended.
    public func waitForExit() async -> ChildExit? {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<ChildExit?, Never>) in
                let cancelled = Task.isCancelled
                let now = state.withLock { state -> ChildExit?? in
                    if let exit = state.exit { return .some(exit) }
                    if state.abandoned || cancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiting = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiting?.resume(returning: nil)
        }
    }

    /// Waits up to `timeout` for the supervisor to reap the child, blocking the calling thread, and returns how it
    /// ended. Returns nil on timeout, or when the supervisor stopped before the child ended. For threads; from a
    /// task, use ``waitForExit()``.
    public func waitForExit(timeout: Duration) -> ChildExit? {
        var exit: ChildExit? = nil
        _ = supervisor.exits.wait(timeout: timeout) {
            let (ended, abandoned) = state.withLock { ($0.exit, $0.abandoned) }
            exit = ended
            return ended != nil || abandoned
        }
        return exit
    }

    /// Sends `signal` to the child, or to its process group. Throws ``SignalError/system(call:errno:)`` with
    /// ESRCH once the child was reaped: its pid may belong to another process by then.
    /// The corresponding C function is `kill`.
    public func send(_ signal: Signal, to target: ChildSupervisor.Configuration.ForwardTarget = .child) throws(SignalError) {
        try supervisor.send(signal, to: self, target: target)
    }

    /// "pid 812 (running)", "pid 812 exited with status 0".
    public var description: String {
        let (exit, abandoned) = state.withLock { ($0.exit, $0.abandoned) }
        if let exit { return exit.description }
        return "pid \(pid) (\(abandoned ? "no longer supervised" : "running"))"
    }

    /// The supervisor reaped the child.
    func finish(_ exit: ChildExit) {
        let waiting = state.withLock { state -> [UnsafeContinuation<ChildExit?, Never>] in
            state.exit = exit
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        supervisor.exits.broadcast()
        for continuation in waiting { continuation.resume(returning: exit) }
    }

    /// The supervisor will not reap the child.
    func abandon() {
        let waiting = state.withLock { state -> [UnsafeContinuation<ChildExit?, Never>] in
            state.abandoned = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        supervisor.exits.broadcast()
        for continuation in waiting { continuation.resume(returning: nil) }
    }
}
