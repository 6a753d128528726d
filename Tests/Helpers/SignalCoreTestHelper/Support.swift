import ChildProcessTesting
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

// The output protocol and its helpers (`say`, `fail`, `check`, `must`, `waitUntil`, `runAsync`, `HelperThread`)
// come from ChildProcessTesting, which the tests read the output with.

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
    return "signal=\(e.signal.rawValue) pid=\(e.senderPID) uid=\(e.senderUID) code=\(e.code.rawValue) value=\(e.value) route=\(e.route) tid=\(e.threadID)"
}

/// Whether thread `tid` sleeps in sigwaitinfo/sigtimedwait with the watched signals open: it holds the wait
/// role and waits for the kernel (its mask shows the temporary one while it waits).
func waitsInKernel(_ tid: pid_t) -> Bool {
    guard let report = try? SignalEngine.shared.auditThreads().first(where: { $0.threadID == tid }) else { return false }
    return !report.blocked.isSuperset(of: SignalEngine.shared.watchedSignals)
}

