import CSignalShim

/// The recorder's counters for one signal. They only grow, for the life of the process, across engine runs.
public struct SignalCounts: Sendable, Hashable, CustomStringConvertible {
    /// Every delivery the kernel made to this process while the engine watched the signal.
    public var delivered: UInt64
    /// Deliveries taken by the wait thread.
    public var viaWaitThread: UInt64
    /// Deliveries that ran the fallback handler on another thread.
    public var viaHandler: UInt64
    /// Deliveries counted but not recorded because the record ring was full.
    public var droppedRecords: UInt64

    /// Makes a set of counts, for comparisons and tests; the engine's come from ``SignalEngine/counts(for:)``.
    public init(delivered: UInt64 = 0, viaWaitThread: UInt64 = 0, viaHandler: UInt64 = 0, droppedRecords: UInt64 = 0) {
        self.delivered = delivered
        self.viaWaitThread = viaWaitThread
        self.viaHandler = viaHandler
        self.droppedRecords = droppedRecords
    }

    init(_ c: csignal_counts) {
        self.init(delivered: c.delivered, viaWaitThread: c.via_waiter, viaHandler: c.via_handler, droppedRecords: c.dropped)
    }

    /// "delivered 3 (wait thread 3, handler 0), dropped records 0".
    public var description: String {
        "delivered \(delivered) (wait thread \(viaWaitThread), handler \(viaHandler)), dropped records \(droppedRecords)"
    }
}

/// "New deliveries of this signal since I last looked", for hot loops.
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
