import CStressSupport

#if canImport(Glibc)
import Glibc
#endif

/// Which signal goes where. Each queue has exactly one taker, which is what makes per-sender order and the
/// handshake checkable:
/// - process-directed (kill, sigqueue): SIGUSR1, SIGHUP, SIGRTMIN, SIGRTMIN+1, blocked in every thread, taken
///   only by SignalCore's wait thread;
/// - to the wait thread (tgkill, rt_tgsigqueueinfo): SIGUSR1, SIGRTMIN+1, taken by the wait thread from its
///   own queue;
/// - to a worker thread: SIGUSR2, SIGRTMIN+2, which only the workers unblock, so each worker's fallback
///   handler records what was sent to it. Nobody sends these two to the process.
/// Handshake markers are real-time, in the same queue as the standard signal they vouch for.
enum StressSignals {
    static var rt: CInt { cstress_rtmin() }
    static let processStandard: [CInt] = [SIGUSR1, SIGHUP]
    static var processRealtime: [CInt] { [rt, rt + 1] }
    static let waiterStandard = SIGUSR1
    static var waiterRealtime: CInt { rt + 1 }
    static let workerStandard = SIGUSR2
    static var workerRealtime: CInt { rt + 2 }
    static var watched: [CInt] { [SIGUSR1, SIGHUP, SIGUSR2, rt, rt + 1, rt + 2] }

    /// The real-time signal used as a marker for a standard signal sent to `destination`.
    static func marker(process: Bool, worker: Bool) -> CInt {
        process ? rt : worker ? workerRealtime : waiterRealtime
    }
}
