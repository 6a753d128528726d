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
