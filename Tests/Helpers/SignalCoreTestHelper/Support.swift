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
    return "signal=\(e.signal.rawValue) pid=\(e.senderPID) uid=\(e.senderUID) code=\(e.code) value=\(e.value) route=\(e.route) tid=\(e.threadID)"
}

