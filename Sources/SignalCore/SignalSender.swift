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

    /// The calling thread's kernel thread id. The corresponding C function is `gettid`.
    public static var currentThreadID: pid_t { csignal_gettid() }
}
