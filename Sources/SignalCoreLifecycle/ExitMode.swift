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

    /// Ends the process because of `signal`, the configured way (``SignalSender/terminateProcess(by:)`` for
    /// ``reraise``). Flushes stdio first.
    public func terminate(by signal: Signal) -> Never {
        if self == .reraise { SignalSender.terminateProcess(by: signal) }
        fflush(nil)
        _exit(128 + signal.rawValue)
    }

    /// The status a parent sees, as a shell prints it: 128 + n either way.
    public func shellStatus(for signal: Signal) -> Int32 { 128 + signal.rawValue }
}
