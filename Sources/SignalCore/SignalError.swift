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
    /// The real-time signal the running engine took for itself (see ``Signal/engineInternal``).
    case engineInternal(Signal)
    /// The engine watches this signal; its disposition belongs to the engine until it is unwatched.
    case watchedByEngine(Signal)
    /// ``SignalEngine/unwatch(_:)`` of a signal that subscriptions still receive.
    case stillClaimed(Signal)
    /// ``SignalEngine/start(watching:configuration:)`` on an engine that already runs.
    case alreadyRunning
    /// The engine is not running.
    case notRunning
    /// A configuration value is out of its range; the string says which and why.
    case invalidConfiguration(String)
    /// Called from the engine's wait thread (a task running on ``SignalEngine/executor``) or from inside a
    /// blocking wait: setup waits for that thread, so it cannot run there.
    case calledOnWaitThread
    /// The wait thread did not answer in time (it is busy running a long job on ``SignalEngine/executor``).
    /// Nothing changed; try again.
    case waitThreadBusy
    /// Every real-time signal is taken by someone else, or refused by the system, so the engine has no
    /// internal signal to use.
    case noInternalSignal
    /// Someone replaced the engine's handler of its internal signal: no thread can be asked to change its mask.
    case internalSignalTaken(Signal)
    /// Thread `threadID` blocks the engine's internal signal but not `signal`, so it would take `signal` beside
    /// the engine and cannot be asked to block it.
    case unreachableThread(threadID: CInt, signal: Signal)
    /// Thread `threadID` did not apply a mask change in time (it may be stopped, or stuck in the kernel).
    case threadDidNotAnswer(threadID: CInt)
    /// ``SignalEngine/prepareChildProcess()`` was called in the process that started the engine, not in a
    /// forked child.
    case notInForkedChild
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
        case .engineInternal(let s): return "\(s) is the real-time signal SignalCore's engine uses internally"
        case .watchedByEngine(let s): return "\(s) is watched by the engine; unwatch it first"
        case .stillClaimed(let s): return "\(s) is still received by subscriptions; cancel them first"
        case .alreadyRunning: return "the signal engine is already running"
        case .notRunning: return "the signal engine is not running"
        case .invalidConfiguration(let why): return "invalid configuration: \(why)"
        case .calledOnWaitThread:
            return "called on the engine's wait thread (an executor job) or inside a blocking wait"
        case .waitThreadBusy: return "the engine's wait thread did not answer in time; nothing changed"
        case .noInternalSignal: return "no real-time signal is free for the engine's internal use"
        case .internalSignalTaken(let s):
            return "another handler replaced the engine's handler of its internal signal \(s)"
        case .unreachableThread(let tid, let s):
            return "thread \(tid) blocks the engine's internal signal but not \(s), so it cannot be made to block \(s)"
        case .threadDidNotAnswer(let tid): return "thread \(tid) did not apply the mask change in time"
        case .notInForkedChild:
            return "prepareChildProcess() must be called in the child of a fork, not in the process that started the engine"
        case .system(let call, let code):
            return "\(call): \(String(cString: strerror(code))) (errno: \(code))"
        }
    }
}
