#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A disposition saved by ``SignalDispositions``, to put back with ``SignalDispositions/restore(_:)``.
public struct SavedDisposition: @unchecked Sendable {
    // @unchecked: `sigaction` holds a C function pointer and flags; it is a plain value.
    /// The signal whose disposition was saved.
    public let signal: Signal
    let action: sigaction
}
