/// What the kernel does with a signal that is not blocked.
public enum SignalDisposition: Sendable, Hashable {
    /// The default action (terminate, core, stop, continue or ignore, depending on the signal).
    case `default`
    /// Discarded on delivery.
    case ignore
    /// A handler runs (SignalCore's fallback handler, or someone else's).
    case handler
}
