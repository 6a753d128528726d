import SignalCore
import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// signal-run's messages on standard error, each line written with one `write(2)` so that lines from the
/// supervisor's tasks and the main task never interleave.
enum Log {
    /// Writes "signal-run: `message`".
    static func write(_ message: String) {
        var line = Array("signal-run: \(message)\n".utf8)
        var offset = 0
        while offset < line.count {
            let n = line.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    /// The `--verbose` line for what the supervisor did.
    static func describe(_ event: ChildSupervisor.Event) -> String {
        switch event {
        case .reaped(let exit, let spawned):
            let what = spawned ? "COMMAND" : "orphan"
            let how: String
            switch exit.termination {
            case .exited(let code): how = "exited with status \(code)"
            case .signalled(let signal): how = "killed by \(signal)" + (exit.coreDumped ? " (core dumped)" : "")
            }
            return "reaped pid \(exit.pid) (\(what)): \(how)"
        case .forwarded(let signal, let pid, let target, let error):
            let to = target == .child ? "pid \(pid)" : "process group \(pid)"
            return "forwarded \(signal) to \(to)" + (error.map { ": \($0)" } ?? "")
        case .killedAfterGrace(let pid, let grace, let error):
            return "grace period of \(seconds(grace)) s over: SIGKILL to process group \(pid)"
                + (error.map { ": \($0)" } ?? "")
        }
    }

    /// "2.5", "10", "0.25": seconds to the millisecond.
    static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "\(whole)" }
        var fraction = String(milliseconds)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }
}
