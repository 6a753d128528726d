#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended, decoded from a `waitpid` status.
public enum ProcessExit: Equatable, Sendable, CustomStringConvertible {
    /// It called `exit` (or returned from `main`) with this status.
    case exited(CInt)
    /// A signal with this number ended it.
    case signalled(CInt)

    /// Decodes the status word `waitpid` filled in (`WIFEXITED`/`WEXITSTATUS`, `WTERMSIG`).
    public init(waitStatus status: CInt) {
        self = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signalled(let signal): return "killed by signal \(signal)"
        }
    }
}
