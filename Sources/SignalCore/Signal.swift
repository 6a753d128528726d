import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A signal number, with the names Linux gives them.
///
/// `Signal` is a plain wrapper over the C number: any number can be represented, and the places that act on a
/// signal (``SignalEngine/events(for:buffering:)`` and the other subscribing calls, ``SignalDispositions``,
/// ``SignalSender``) validate it and throw a ``SignalError`` naming what is wrong.
public struct Signal: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The C signal number.
    public let rawValue: CInt

    /// Wraps a C signal number without validating it.
    @inlinable
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// Wraps a C signal number without validating it.
    @inlinable
    public init(_ number: CInt) { self.rawValue = number }

    /// Orders signals by number.
    public static func < (lhs: Signal, rhs: Signal) -> Bool { lhs.rawValue < rhs.rawValue }

    /// SIGHUP (1): the terminal hung up; by convention daemons reload their configuration on it.
    public static let sighup = Signal(SIGHUP)
    /// SIGINT (2): interrupt from the terminal (Ctrl-C).
    public static let sigint = Signal(SIGINT)
    /// SIGQUIT (3): quit from the terminal (Ctrl-\\); the default action dumps core.
    public static let sigquit = Signal(SIGQUIT)
    /// SIGILL (4): illegal instruction. A synchronous fault signal: it cannot be watched.
    public static let sigill = Signal(SIGILL)
    /// SIGTRAP (5): trace or breakpoint trap. A synchronous fault signal: it cannot be watched.
    public static let sigtrap = Signal(SIGTRAP)
    /// SIGABRT (6): abort, as sent by `abort()`.
    public static let sigabrt = Signal(SIGABRT)
    /// SIGBUS (7): bus error (bad memory access). A synchronous fault signal: it cannot be watched.
    public static let sigbus = Signal(SIGBUS)
    /// SIGFPE (8): arithmetic fault. A synchronous fault signal: it cannot be watched.
    public static let sigfpe = Signal(SIGFPE)
    /// SIGKILL (9): kills the process. It cannot be caught, blocked or ignored.
    public static let sigkill = Signal(SIGKILL)
    /// SIGUSR1 (10): for the application's own use.
    public static let sigusr1 = Signal(SIGUSR1)
    /// SIGSEGV (11): invalid memory reference. A synchronous fault signal: it cannot be watched.
    public static let sigsegv = Signal(SIGSEGV)
    /// SIGUSR2 (12): for the application's own use.
    public static let sigusr2 = Signal(SIGUSR2)
    /// SIGPIPE (13): write to a pipe or socket with no reader.
    public static let sigpipe = Signal(SIGPIPE)
    /// SIGALRM (14): a timer set with `alarm` or `setitimer` expired.
    public static let sigalrm = Signal(SIGALRM)
    /// SIGTERM (15): the polite request to terminate; what `kill`, systemd and container runtimes send first.
    public static let sigterm = Signal(SIGTERM)
    /// SIGCHLD (17): a child process stopped or ended.
    public static let sigchld = Signal(SIGCHLD)
    /// SIGCONT (18): continue if stopped.
    public static let sigcont = Signal(SIGCONT)
    /// SIGSTOP (19): stops the process. It cannot be caught, blocked or ignored.
    public static let sigstop = Signal(SIGSTOP)
    /// SIGTSTP (20): stop from the terminal (Ctrl-Z).
    public static let sigtstp = Signal(SIGTSTP)
    /// SIGTTIN (21): a background process read from its terminal.
    public static let sigttin = Signal(SIGTTIN)
    /// SIGTTOU (22): a background process wrote to its terminal.
    public static let sigttou = Signal(SIGTTOU)
    /// SIGURG (23): urgent data on a socket.
    public static let sigurg = Signal(SIGURG)
    /// SIGXCPU (24): the CPU time limit (RLIMIT_CPU) was exceeded.
    public static let sigxcpu = Signal(SIGXCPU)
    /// SIGXFSZ (25): the file size limit (RLIMIT_FSIZE) was exceeded.
    public static let sigxfsz = Signal(SIGXFSZ)
    /// SIGVTALRM (26): a virtual-time timer expired.
    public static let sigvtalrm = Signal(SIGVTALRM)
    /// SIGPROF (27): a profiling timer expired.
    public static let sigprof = Signal(SIGPROF)
    /// SIGWINCH (28): the terminal window changed size.
    public static let sigwinch = Signal(SIGWINCH)
    /// SIGIO (29): I/O is possible on a descriptor set up for it.
    public static let sigio = Signal(SIGIO)
    /// SIGPWR (30): power failure.
    public static let sigpwr = Signal(SIGPWR)
    /// SIGSYS (31): bad system call (or a seccomp trap). A synchronous fault signal: it cannot be watched.
    public static let sigsys = Signal(SIGSYS)

    /// SIGRTMIN as the running C library defines it (glibc keeps 32 and 33 for itself, so usually 34).
    public static var realtimeMinimum: Signal { Signal(csignal_rtmin()) }
    /// SIGRTMAX as the running C library defines it (64 on Linux).
    public static var realtimeMaximum: Signal { Signal(csignal_rtmax()) }
    /// The real-time signal the engine took for itself when it started (SIGRTMAX, or the highest free one below
    /// it when SIGRTMAX was taken), or nil before the engine's first start. It cannot be watched while the
    /// engine runs.
    public static var engineInternal: Signal? {
        let number = csignal_internal_signo()
        return number > 0 ? Signal(number) : nil
    }

    /// The real-time signal SIGRTMIN + `offset`. Not validated: an offset past SIGRTMAX gives a number that the
    /// engine refuses with ``SignalError/outOfRange(_:)``.
    public static func realtime(_ offset: Int) -> Signal {
        Signal(csignal_rtmin() + CInt(truncatingIfNeeded: offset))
    }

    /// Whether this is a real-time signal (SIGRTMIN...SIGRTMAX).
    public var isRealtime: Bool { rawValue >= csignal_rtmin() && rawValue <= csignal_rtmax() }

    /// "SIGTERM"; real-time signals as `kill -l` names them: "SIGRTMIN", "SIGRTMIN+3" in the lower half,
    /// "SIGRTMAX-2", "SIGRTMAX" in the upper half; "SIG42" for numbers without a name.
    public var description: String {
        if rawValue >= 1, rawValue < Signal.standardNames.count { return "SIG" + Signal.standardNames[Int(rawValue)] }
        let rtmin = csignal_rtmin(), rtmax = csignal_rtmax()
        guard rawValue >= rtmin, rawValue <= rtmax else { return "SIG\(rawValue)" }
        if rawValue == rtmin { return "SIGRTMIN" }
        if rawValue == rtmax { return "SIGRTMAX" }
        if rawValue - rtmin <= (rtmax - rtmin) / 2 { return "SIGRTMIN+\(rawValue - rtmin)" }
        return "SIGRTMAX-\(rtmax - rawValue)"
    }

    /// Names without the "SIG" prefix, indexed by number (Linux, x86_64 and arm64).
    static let standardNames: [String] = [
        "0", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
        "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM",
        "PROF", "WINCH", "IO", "PWR", "SYS",
    ]

    /// Parses "SIGTERM", "TERM", "term", "15", "SIGRTMIN+2", "RTMIN", "RTMAX-1". Returns nil for anything else.
    public init?(name: String) {
        var text = name.uppercased()
        if let number = CInt(text) {
            self.init(number)
            return
        }
        if text.hasPrefix("SIG") { text.removeFirst(3) }
        if let index = Signal.standardNames.firstIndex(of: text), index > 0 {
            self.init(CInt(index))
            return
        }
        func offset(after prefix: String) -> CInt? {
            guard text.hasPrefix(prefix) else { return nil }
            let rest = text.dropFirst(prefix.count)
            if rest.isEmpty { return 0 }
            return CInt(rest)  // "+2" and "-1" both parse
        }
        if let delta = offset(after: "RTMIN") {
            self.init(csignal_rtmin() + delta)
        } else if let delta = offset(after: "RTMAX") {
            self.init(csignal_rtmax() + delta)
        } else {
            return nil
        }
    }

    /// Checks that the engine may watch this signal; throws the case that says why not.
    public func validateWatchable() throws(SignalError) {
        switch csignal_watch_refusal(rawValue) {
        case 0: return
        case CInt(CSIGNAL_REFUSE_RANGE): throw .outOfRange(rawValue)
        case CInt(CSIGNAL_REFUSE_UNCATCHABLE): throw .uncatchable(self)
        case CInt(CSIGNAL_REFUSE_SYNCHRONOUS): throw .synchronous(self)
        case CInt(CSIGNAL_REFUSE_LIBC): throw .reservedByLibc(self)
        default: throw .engineInternal(self)
        }
    }

    /// Range, uncatchable, reserved and internal checks shared by watching and disposition changes.
    func validateCatchable() throws(SignalError) {
        try validateNumber()
        if rawValue == SIGKILL || rawValue == SIGSTOP { throw .uncatchable(self) }
        if rawValue >= 32, rawValue < csignal_rtmin() { throw .reservedByLibc(self) }
        if csignal_engine_running(), rawValue == csignal_internal_signo() { throw .engineInternal(self) }
    }

    /// 1...SIGRTMAX.
    func validateNumber() throws(SignalError) {
        guard rawValue >= 1, rawValue <= csignal_rtmax() else { throw .outOfRange(rawValue) }
    }
}
