import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sending signals: to a process (`kill`, `sigqueue`), to this process (`raise`), or to one thread of this
/// process (`tgkill`, `rt_tgsigqueueinfo`).
public enum SignalSender {
    /// Sends `signal` to process `pid`. The corresponding C function is `kill`.
    public static func send(_ signal: Signal, to pid: pid_t) throws(SignalError) {
        try signal.validateNumber()
        if kill(pid, signal.rawValue) != 0 { throw .system(call: "kill", errno: errno) }
    }

    /// Queues `signal` with `value` to process `pid`. Real-time signals queue (up to RLIMIT_SIGPENDING, then
    /// the call fails with EAGAIN: see ``SignalError/errno``); standard ones coalesce.
    /// The corresponding C function is `sigqueue`.
    public static func queue(_ signal: Signal, to pid: pid_t, value: CInt) throws(SignalError) {
        try signal.validateNumber()
        var sv = sigval()
        sv.sival_int = value
        if sigqueue(pid, signal.rawValue, sv) != 0 { throw .system(call: "sigqueue", errno: errno) }
    }

    /// Sends `signal` to this process. Unlike C's `raise`, which targets the calling thread, this is
    /// process-directed, so a watched signal goes to the wait thread. The corresponding C function is `kill`.
    public static func raise(_ signal: Signal) throws(SignalError) {
        try send(signal, to: getpid())
    }

    /// Sends `signal` to thread `threadID` of this process. The corresponding C function is `tgkill`.
    public static func send(_ signal: Signal, toThread threadID: pid_t) throws(SignalError) {
        try signal.validateNumber()
        let err = csignal_tgkill(threadID, signal.rawValue)
        if err != 0 { throw .system(call: "tgkill", errno: err) }
    }

    /// Queues `signal` with `value` to thread `threadID` of this process.
    /// The corresponding system call is `rt_tgsigqueueinfo`.
    public static func queue(_ signal: Signal, toThread threadID: pid_t, value: CInt) throws(SignalError) {
        try signal.validateNumber()
        let err = csignal_tg_sigqueue(threadID, signal.rawValue, value)
        if err != 0 { throw .system(call: "rt_tgsigqueueinfo", errno: err) }
    }

    /// Ends the process by `signal`, so that its parent's `wait` reports "killed by" that signal (a shell shows
    /// 128 + n). Flushes stdio first.
    ///
    /// The signal's disposition becomes the default, the signal is unblocked in the calling thread and sent to
    /// that thread alone, and the kernel ends the whole process before `tgkill` returns. This bypasses the engine
    /// on purpose: the process ends here, so nothing needs the engine's bookkeeping, and subscriptions may still
    /// claim the signal (which ``SignalEngine/unwatch(_:)`` would refuse). A thread-directed signal is taken by
    /// no other thread, the engine's wait thread included. When the signal's default action does not end a
    /// process (SIGCHLD, SIGCONT, SIGURG, SIGWINCH, the stop signals) or a step fails, the process exits with
    /// status 128 + n instead.
    public static func terminateProcess(by signal: Signal) -> Never {
        fflush(nil)
        if defaultActionEndsProcess(signal) {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = SIG_DFL
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            if sigaction(signal.rawValue, &action, nil) == 0 {
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, signal.rawValue)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                _ = csignal_tgkill(csignal_gettid(), signal.rawValue)
            }
        }
        _exit(128 + signal.rawValue)
    }

    /// Whether the default action of `signal` ends the process (with or without a core dump).
    static func defaultActionEndsProcess(_ signal: Signal) -> Bool {
        switch signal.rawValue {
        case SIGCHLD, SIGCONT, SIGURG, SIGWINCH: return false  // ignored by default
        case SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: return false  // stop the process
        default: return signal.rawValue >= 1 && signal.rawValue <= Signal.realtimeMaximum.rawValue
        }
    }

    /// The calling thread's kernel thread id. The corresponding C function is `gettid`.
    public static var currentThreadID: pid_t { csignal_gettid() }
}
