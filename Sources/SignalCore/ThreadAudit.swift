import CSignalShim

/// One thread of this process and its signal mask, read from `/proc/self/task/TID/status`.
public struct ThreadMaskReport: Sendable, Hashable, CustomStringConvertible {
    /// Kernel thread id.
    public var threadID: CInt
    /// The thread's name (`comm`), e.g. "signalcore" for the wait thread.
    public var name: String
    /// Whether this is the engine's wait thread.
    public var isWaitThread: Bool
    /// The signals blocked in the thread (SigBlk). A thread parked in sigsuspend or pselect shows the
    /// temporary mask it waits with.
    public var blocked: SignalSet
    /// Whether every watched signal is blocked in this thread.
    public var blocksWatched: Bool
    /// Voluntary context switches so far (how often the thread went to sleep).
    public var voluntaryContextSwitches: UInt64

    init(_ r: csignal_thread_report, watched: SignalSet) {
        threadID = r.tid
        name = withUnsafeBytes(of: r.name) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        isWaitThread = r.is_waiter != 0
        blocked = SignalSet(mask: r.blocked)
        blocksWatched = blocked.isSuperset(of: watched)
        voluntaryContextSwitches = r.voluntary_switches
    }

    /// "tid 812 worker: watched signals blocked".
    public var description: String {
        let role = isWaitThread ? " (wait thread)" : ""
        return "tid \(threadID) \(name)\(role): watched signals \(blocksWatched ? "blocked" : "NOT blocked")"
    }
}
