import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a process that stops because of a signal tells its parent so.
public enum ExitMode: String, Sendable, Hashable, CaseIterable {
    /// Re-raise the signal with its default action: the process dies by the signal, and `wait` reports
    /// "killed by SIGTERM" (a shell shows 143). The truthful default.
    case reraise
    /// Exit normally with status 128 + the signal number (143 for SIGTERM): what shells report, for parents
    /// that only look at exit codes.
    case exitCode = "code"

    /// Ends the process because of `signal`, the configured way. Flushes stdio first.
    ///
    /// For ``reraise``: the engine stops watching `signal`, its disposition becomes the default, it is
    /// unblocked in the calling thread and sent to the calling thread, which the kernel kills before `tgkill`
    /// returns. If the signal's default action does not terminate (SIGCHLD, SIGWINCH...), or anything on the way
    /// fails, the process exits with 128 + n instead.
    public func terminate(by signal: Signal) -> Never {
        fflush(nil)
        if self == .reraise {
            let engine = SignalEngine.shared
            if engine.watchedSignals.contains(signal) { try? engine.unwatch([signal]) }
            if (try? SignalDispositions.setDefault(signal)) != nil {
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, signal.rawValue)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                try? SignalSender.send(signal, toThread: SignalSender.currentThreadID)
            }
        }
        _exit(128 + signal.rawValue)
    }

    /// The status a parent sees, as a shell prints it: 128 + n either way.
    public func shellStatus(for signal: Signal) -> Int32 { 128 + signal.rawValue }
}
