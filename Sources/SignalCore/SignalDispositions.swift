import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Ignore a signal, give it its default action, or put back what it had. Refuses signals the engine watches:
/// their disposition belongs to the engine until they are unwatched. The check and the change happen under the
/// engine's setup lock, so a concurrent watch cannot slip in between.
public enum SignalDispositions {
    /// The current disposition of `signal`. The corresponding C function is `sigaction`.
    public static func current(_ signal: Signal) throws(SignalError) -> SignalDisposition {
        try signal.validateNumber()
        let value = csignal_disposition(signal.rawValue)
        switch value {
        case CInt(CSIGNAL_DISP_DEFAULT): return .default
        case CInt(CSIGNAL_DISP_IGNORE): return .ignore
        case CInt(CSIGNAL_DISP_HANDLER): return .handler
        default: throw .system(call: "sigaction", errno: -value)
        }
    }

    /// Ignores `signal` (SIG_IGN) and returns what it had. Ignoring also discards a pending delivery.
    /// The corresponding C function is `sigaction`.
    @discardableResult
    public static func ignore(_ signal: Signal) throws(SignalError) -> SavedDisposition {
        try signal.validateWatchable()
        return try set(signal, handler: SIG_IGN)
    }

    /// Gives `signal` its default action (SIG_DFL) and returns what it had.
    /// The corresponding C function is `sigaction`.
    @discardableResult
    public static func setDefault(_ signal: Signal) throws(SignalError) -> SavedDisposition {
        try signal.validateCatchable()
        return try set(signal, handler: SIG_DFL)
    }

    /// Puts back a saved disposition (SIG_IGN, SIG_DFL or a foreign handler, with its flags and mask).
    /// The corresponding C function is `sigaction`.
    public static func restore(_ saved: SavedDisposition) throws(SignalError) {
        try saved.signal.validateCatchable()
        try SignalEngine.shared.withSetupLock { () throws(SignalError) in
            try refuseWatched(saved.signal)
            var action = saved.action
            if sigaction(saved.signal.rawValue, &action, nil) != 0 { throw .system(call: "sigaction", errno: errno) }
        }
    }

    private static func refuseWatched(_ signal: Signal) throws(SignalError) {
        if SignalEngine.shared.watchedSignals.contains(signal) { throw .watchedByEngine(signal) }
    }

    private static func set(_ signal: Signal, handler: sighandler_t?) throws(SignalError) -> SavedDisposition {
        try SignalEngine.shared.withSetupLock { () throws(SignalError) -> SavedDisposition in
            try refuseWatched(signal)
            var action = sigaction()
            action.__sigaction_handler.sa_handler = handler
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            var old = sigaction()
            if sigaction(signal.rawValue, &action, &old) != 0 { throw .system(call: "sigaction", errno: errno) }
            return SavedDisposition(signal: signal, action: old)
        }
    }
}
