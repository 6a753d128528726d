import CSignalShim

/// One thread of this process and its part in signal handling, read from `/proc/self/task/TID`.
public struct ThreadMaskReport: Sendable, Hashable, CustomStringConvertible {
    /// What a thread does with the watched signals.
    public enum Role: Sendable, Hashable {
        /// The engine's wait thread: it takes the watched signals from the kernel with `sigwaitinfo`, so they are
        /// open while it waits.
        case waitThread
        /// Libdispatch's parked main thread of an async `@main` program, which the engine took over: it sleeps
        /// in the engine's own loop with the watched signals blocked.
        case adoptedMainThread
        /// Any other thread: it should block the watched signals.
        case other
    }

    /// Kernel thread id.
    public var threadID: CInt
    /// The thread's name (`comm`), e.g. "signalcore" for the wait thread.
    public var name: String
    /// The thread's part in signal handling.
    public var role: Role
    /// Whether this is the engine's wait thread.
    public var isWaitThread: Bool { role == .waitThread }
    /// The signals blocked in the thread (SigBlk). A thread waiting in `sigsuspend`, `ppoll` or `sigwaitinfo`
    /// shows the temporary mask it waits with.
    public var blocked: SignalSet
    /// Signals sent to this thread alone that wait for it to unblock them (SigPnd), such as a watched signal
    /// sent with `tgkill` or `pthread_kill`. The engine records those at unwatch or stop.
    public var pendingOnThread: SignalSet
    /// The watched signals (minus SIGPIPE and SIGXFSZ, which the engine leaves open) this thread has open now.
    /// Empty for the wait thread by definition.
    public var openWatched: SignalSet
    /// Voluntary context switches so far (how often the thread went to sleep).
    public var voluntaryContextSwitches: UInt64

    init(_ r: csignal_thread_report, watched: SignalSet) {
        threadID = r.tid
        name = withUnsafeBytes(of: r.name) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        role = r.is_waiter != 0 ? .waitThread : r.is_parker != 0 ? .adoptedMainThread : .other
        blocked = SignalSet(mask: r.blocked)
        pendingOnThread = SignalSet(mask: r.pending)
        let blockable = SignalSet(mask: watched.mask & ~csignal_thread_directed_class())
        openWatched = role == .waitThread ? [] : blockable.subtracting(blocked)
        voluntaryContextSwitches = r.voluntary_switches
    }

    /// "tid 812 signalcore: the wait thread, takes the watched signals with sigwaitinfo", "tid 813 worker:
    /// blocks the watched signals", or "tid 814 worker: lets SIGTERM in beside the engine".
    public var description: String {
        let head = "tid \(threadID) \(name): "
        switch role {
        case .waitThread: return head + "the wait thread, takes the watched signals with sigwaitinfo"
        case .adoptedMainThread: return head + "the parked main thread, taken over: blocks the watched signals"
        case .other:
            if openWatched.isEmpty { return head + "blocks the watched signals" }
            return head + "lets \(openWatched) in beside the engine"
        }
    }
}

extension SignalEngine {
    /// Every thread of the process with its mask and its part in signal handling.
    public func auditThreads() throws(SignalError) -> [ThreadMaskReport] {
        var capacity = 256
        while true {
            var reports = [csignal_thread_report](repeating: csignal_thread_report(), count: capacity)
            let found = Int(csignal_audit(&reports, CInt(capacity)))
            if found < 0 { throw .system(call: "opendir(/proc/self/task)", errno: CInt(-found)) }
            if found <= capacity {
                let watched = watchedSignals
                return reports.prefix(found).map { ThreadMaskReport($0, watched: watched) }
            }
            capacity = found + 64
        }
    }
}
