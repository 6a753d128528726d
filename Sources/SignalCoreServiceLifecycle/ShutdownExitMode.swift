#if ServiceLifecycleIntegration
import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension SignalShutdownService {
    /// How the process ends after a signal shut the group down: what ``SignalShutdownService/run()`` does once
    /// the group has finished. The same choices as SignalCoreLifecycle's `GracefulShutdown`, with the same
    /// default, plus returning for programs that end themselves.
    ///
    /// "The signal" is the one whose action ended the group: the one that cancelled it, or else the one that
    /// started its graceful shutdown. When no signal ended the group (an outer group shut it down, or its services
    /// finished by themselves), ``SignalShutdownService/run()`` returns whatever the mode.
    public enum ExitMode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// The process dies by the signal: `wait` reports "killed by SIGTERM", a shell shows 143. The truthful
        /// status, and the default.
        ///
        /// To get there, `run()` calls `SignalSender.terminateProcess(by:)`: the signal gets its default action
        /// and is sent to the calling thread, with the engine left as it is. When the signal's default action
        /// does not end a process (SIGCHLD, SIGWINCH, SIGURG, SIGCONT), or a step fails, the process exits with
        /// 128 + n instead.
        case reraise
        /// The process exits with status 128 + n (143 for SIGTERM, 130 for SIGINT): what a shell reports for
        /// death by a signal, for parents that look only at exit codes.
        case exitCode = "code"
        /// `run()` returns normally and the program goes on: a `main` that ends there exits with status 0.
        /// The signals stay caught by the engine (see the claim rule of `SignalEngine`), so a later SIGTERM
        /// does nothing unless the program handles it.
        case returnNormally = "return"

        /// "reraise", "code" or "return".
        public var description: String { rawValue }

        /// Ends the process because of `signal`, the configured way; returns only for ``returnNormally``.
        /// Flushes stdio first.
        func finish(after signal: Signal) {
            switch self {
            case .returnNormally:
                return
            case .exitCode:
                fflush(nil)
                _exit(128 + signal.rawValue)
            case .reraise:
                SignalSender.terminateProcess(by: signal)
            }
        }
    }
}
#endif
