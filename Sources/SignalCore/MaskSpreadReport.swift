import CSignalShim

/// What the most recent change of the threads' masks found (``SignalEngine/lastMaskSpread``).
public struct MaskSpreadReport: Sendable, Hashable, CustomStringConvertible {
    /// Passes over the thread list (a pass repeats while new threads appear).
    public var passes: Int
    /// Threads asked to apply the change.
    public var signalled: Int
    /// Threads that block the engine's internal signal and the watched signals too (libdispatch's worker
    /// threads block everything): they need no change and cannot be asked.
    public var unreachable: Int
    /// Threads that applied the change but wait with a temporary mask that lets watched signals in (a
    /// `sigsuspend` or `ppoll` of their own): they take watched signals beside the engine.
    public var competing: Int
    /// Threads whose previous mask could not be recorded (more threads than the engine's table holds); they
    /// get the watched signals unblocked at unwatch.
    public var untracked: Int
    /// The main thread parked by an async `@main` program (libdispatch's `dispatch_main`), which the engine
    /// took over so that it blocks the watched signals like every other thread; nil when there is none.
    public var adoptedParkerThreadID: CInt?

    init(_ r: csignal_spread_result) {
        passes = Int(r.passes)
        signalled = Int(r.signalled)
        unreachable = Int(r.unreachable)
        competing = Int(r.competing)
        untracked = Int(r.untracked)
        adoptedParkerThreadID = r.adopted_parker > 0 ? r.adopted_parker : nil
    }

    /// "2 passes, 3 threads asked, 16 unreachable, 0 competing".
    public var description: String {
        var text = "\(passes) passes, \(signalled) threads asked, \(unreachable) unreachable, \(competing) competing"
        if untracked > 0 { text += ", \(untracked) untracked" }
        if let parker = adoptedParkerThreadID { text += ", parked main thread \(parker) taken over" }
        return text
    }
}
