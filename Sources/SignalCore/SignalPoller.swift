import CSignalShim

/// "New deliveries of this signal since I last looked", for hot loops. Made by
/// ``SignalEngine/poller(for:)``, which makes sure the engine watches the signal.
///
/// ``poll()`` is one acquire load of the C counter (a plain `mov` on x86_64) plus a subtraction: no lock, system call or
/// allocation. A poller is a value: each copy keeps its own "last looked" mark.
public struct SignalPoller: Sendable {
    /// The signal this poller counts.
    public let signal: Signal
    @usableFromInline var seen: UInt64

    /// Starts counting from the deliveries made so far.
    public init(_ signal: Signal) {
        self.signal = signal
        self.seen = csignal_delivered(signal.rawValue)
    }

    /// Deliveries since the previous call (or since this poller was made). Marks them as seen.
    @inlinable @inline(__always)
    public mutating func poll() -> UInt64 {
        let now = csignal_delivered(signal.rawValue)
        let new = now &- seen
        seen = now
        return new
    }

    /// Whether anything arrived since the last ``poll()``, without marking it seen.
    @inlinable @inline(__always)
    public var hasNew: Bool { csignal_delivered(signal.rawValue) != seen }

    /// All deliveries of the signal so far, for the life of the process.
    @inlinable @inline(__always)
    public var total: UInt64 { csignal_delivered(signal.rawValue) }
}
