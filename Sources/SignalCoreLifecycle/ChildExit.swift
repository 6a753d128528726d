import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a child process ended, as `waitpid` reported it when the child was reaped.
public struct ChildExit: Sendable, Hashable, CustomStringConvertible {
    /// Why the process ended.
    public enum Termination: Sendable, Hashable {
        /// It called `exit` (or returned from `main`) with this status, 0...255.
        case exited(CInt)
        /// This signal ended it.
        case signalled(Signal)
    }

    /// The process id the child had. Once reaped, the kernel may give it to a new process.
    public var pid: pid_t
    /// Why it ended.
    public var termination: Termination
    /// Whether the kernel wrote a core dump when the signal ended it (`WCOREDUMP`). Depends on the signal,
    /// `RLIMIT_CORE` and `/proc/sys/kernel/core_pattern`.
    public var coreDumped: Bool

    /// Makes an exit record by hand.
    public init(pid: pid_t, termination: Termination, coreDumped: Bool = false) {
        self.pid = pid
        self.termination = termination
        self.coreDumped = coreDumped
    }

    /// Decodes the status word that `waitpid` filled in for an ended child (`WIFEXITED`, `WEXITSTATUS`,
    /// `WTERMSIG`, `WCOREDUMP`). A status that reports a stopped or continued child is not an exit: nil.
    public init?(pid: pid_t, waitStatus status: CInt) {
        let low = status & 0x7f
        if low == 0 {
            self.init(pid: pid, termination: .exited((status >> 8) & 0xff))
        } else if low != 0x7f, status & 0xffff != 0xffff {
            self.init(pid: pid, termination: .signalled(Signal(low)), coreDumped: status & 0x80 != 0)
        } else {
            return nil
        }
    }

    /// The status a shell reports for it: the exit status, or 128 + n when signal n ended it (what tini and
    /// `signal-run` exit with).
    public var shellStatus: CInt {
        switch termination {
        case .exited(let code): return code
        case .signalled(let signal): return 128 + signal.rawValue
        }
    }

    /// "pid 812 exited with status 3", "pid 812 was killed by SIGSEGV (core dumped)".
    public var description: String {
        switch termination {
        case .exited(let code): return "pid \(pid) exited with status \(code)"
        case .signalled(let signal):
            return "pid \(pid) was killed by \(signal)" + (coreDumped ? " (core dumped)" : "")
        }
    }
}
