import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the kernel does with a signal that is not blocked.
public enum SignalDisposition: Sendable, Hashable {
    /// The default action (terminate, core, stop, continue or ignore, depending on the signal).
    case `default`
    /// Discarded on delivery.
    case ignore
    /// A handler runs (SignalCore's fallback handler, or someone else's).
    case handler
}

/// A disposition saved by ``SignalDispositions``, to put back with ``SignalDispositions/restore(_:)``.
public struct SavedDisposition: @unchecked Sendable {
    // @unchecked: `sigaction` holds a C function pointer and flags; it is a plain value.
    /// The signal whose disposition was saved.
    public let signal: Signal
    let action: sigaction
}

/// Ignore a signal, give it its default action, or put back what it had. Refuses signals the engine watches:
/// their disposition belongs to the engine until they are unwatched.
public enum SignalDispositions {
    /// The current disposition of `signal`.
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
    @discardableResult
    public static func ignore(_ signal: Signal) throws(SignalError) -> SavedDisposition {
        try signal.validateWatchable()
        return try set(signal, handler: SIG_IGN)
    }

    /// Gives `signal` its default action (SIG_DFL) and returns what it had.
    @discardableResult
    public static func setDefault(_ signal: Signal) throws(SignalError) -> SavedDisposition {
        try signal.validateCatchable()
        return try set(signal, handler: SIG_DFL)
    }

    /// Puts back a saved disposition (SIG_IGN, SIG_DFL or a foreign handler, with its flags and mask).
    public static func restore(_ saved: SavedDisposition) throws(SignalError) {
        try saved.signal.validateCatchable()
        try refuseWatched(saved.signal)
        var action = saved.action
        if sigaction(saved.signal.rawValue, &action, nil) != 0 { throw .system(call: "sigaction", errno: errno) }
    }

    private static func refuseWatched(_ signal: Signal) throws(SignalError) {
        if SignalEngine.shared.watchedSignals.contains(signal) { throw .watchedByEngine(signal) }
    }

    private static func set(_ signal: Signal, handler: sighandler_t?) throws(SignalError) -> SavedDisposition {
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
