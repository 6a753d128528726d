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
    /// For ``reraise``: the signal's disposition becomes the default, the signal is unblocked in the calling thread
    /// and sent to the calling thread alone, and the kernel ends the whole process before `tgkill` returns. This
    /// bypasses the engine on purpose: the process ends here, so nothing needs the engine's bookkeeping, and the
    /// signal may still be claimed by subscriptions (this process's ``GracefulShutdown`` has one), which
    /// ``SignalEngine/unwatch(_:)`` would refuse. A thread-directed signal is taken by no other thread, the
    /// engine's wait thread included. If the signal's default action does not terminate (SIGCHLD, SIGWINCH,
    /// SIGTSTP...), or a call on the way fails, the process exits with 128 + n instead.
    public func terminate(by signal: Signal) -> Never {
        fflush(nil)
        if self == .reraise, ExitMode.terminatesByDefault(signal) {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = SIG_DFL
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            if sigaction(signal.rawValue, &action, nil) == 0 {
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, signal.rawValue)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                try? SignalSender.send(signal, toThread: SignalSender.currentThreadID)
            }
        }
        _exit(128 + signal.rawValue)
    }

    /// Whether the default action of `signal` ends the process (with or without a core dump). False for the
    /// signals whose default is to be ignored or to stop the process, and for numbers that are no signal.
    static func terminatesByDefault(_ signal: Signal) -> Bool {
        switch signal.rawValue {
        case SIGCHLD, SIGCONT, SIGURG, SIGWINCH: return false  // ignored by default
        case SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: return false  // stop the process
        default: return signal.rawValue >= 1 && signal.rawValue <= Signal.realtimeMaximum.rawValue
        }
    }

    /// The status a parent sees, as a shell prints it: 128 + n either way.
    public func shellStatus(for signal: Signal) -> Int32 { 128 + signal.rawValue }
}
