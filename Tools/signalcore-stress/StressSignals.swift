import CStressSupport

#if canImport(Glibc)
import Glibc
#endif

/// Which signal goes where. Each queue has one taker at a time, which is what makes per-sender order and the
/// handshake checkable:
/// - process-directed (kill, sigqueue): SIGUSR1, SIGHUP, SIGRTMIN, SIGRTMIN+1, blocked in every thread, taken
///   by whoever holds SignalCore's wait role (the wait thread, or a thread that borrowed the role in
///   `next(timeout:)`, like the target's consumer): one holder at a time;
/// - to the wait thread (tgkill, rt_tgsigqueueinfo): SIGWINCH, SIGRTMIN+1, taken by the wait thread from its
///   own queue (SIGWINCH is never sent to the process, so a process-directed standard signal is never
///   confused with a thread-directed one);
/// - to a worker thread: SIGUSR2, SIGRTMIN+2, which only the workers unblock, so each worker's fallback
///   handler records what was sent to it. Nobody sends these two to the process.
/// Handshake markers are real-time, in the same queue as the standard signal they vouch for.
enum StressSignals {
    static var rt: CInt { cstress_rtmin() }
    static let processStandard: [CInt] = [SIGUSR1, SIGHUP]
    static var processRealtime: [CInt] { [rt, rt + 1] }
    static let waiterStandard = SIGWINCH
    static var waiterRealtime: CInt { rt + 1 }
    static let workerStandard = SIGUSR2
    static var workerRealtime: CInt { rt + 2 }
    static var watched: [CInt] { [SIGUSR1, SIGHUP, SIGWINCH, SIGUSR2, rt, rt + 1, rt + 2] }

    /// The real-time signal used as a marker for a standard signal sent to `destination`.
    static func marker(process: Bool, worker: Bool) -> CInt {
        process ? rt : worker ? workerRealtime : waiterRealtime
    }
}
