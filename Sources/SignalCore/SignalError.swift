#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why SignalCore refused a request or a system call failed. A refused request changed nothing.
public enum SignalError: Error, Equatable, Sendable, CustomStringConvertible {
    /// SIGKILL and SIGSTOP cannot be caught, blocked or ignored.
    case uncatchable(Signal)
    /// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS report faults of the thread that caused them; they
    /// cannot be waited for on another thread.
    case synchronous(Signal)
    /// Not a signal number: outside 1...SIGRTMAX.
    case outOfRange(CInt)
    /// A real-time signal that glibc keeps for itself (32 and 33, below SIGRTMIN).
    case reservedByLibc(Signal)
    /// The engine's own internal signal (SIGRTMAX).
    case engineInternal(Signal)
    /// The engine watches this signal; unwatch it before changing its disposition.
    case watchedByEngine(Signal)
    /// ``SignalEngine/start(watching:configuration:)`` on an engine that already runs.
    case alreadyRunning
    /// The engine is not running.
    case notRunning
    /// A configuration value is out of its range; the string says which and why.
    case invalidConfiguration(String)
    /// A system call failed: its name and errno.
    case system(call: String, errno: CInt)

    /// The C error number, for ``system(call:errno:)``.
    public var errno: CInt? {
        if case .system(_, let code) = self { return code }
        return nil
    }

    /// A one-line explanation; for system calls "call: strerror (errno: N)".
    public var description: String {
        switch self {
        case .uncatchable(let s): return "\(s) cannot be caught, blocked or ignored"
        case .synchronous(let s): return "\(s) is a synchronous fault signal and cannot be watched"
        case .outOfRange(let n): return "\(n) is not a signal number (1...\(Signal.realtimeMaximum.rawValue))"
        case .reservedByLibc(let s): return "signal \(s.rawValue) is reserved by the C library"
        case .engineInternal(let s): return "\(s) is SignalCore's internal signal"
        case .watchedByEngine(let s): return "\(s) is watched by the engine; unwatch it first"
        case .alreadyRunning: return "the signal engine is already running"
        case .notRunning: return "the signal engine is not running"
        case .invalidConfiguration(let why): return "invalid configuration: \(why)"
        case .system(let call, let code):
            return "\(call): \(String(cString: strerror(code))) (errno: \(code))"
        }
    }
}
