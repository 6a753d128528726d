import CSignalShim

extension SignalEngine {
    /// How the engine records and hands over deliveries. The defaults suit almost every program; pass one to
    /// ``SignalEngine/start(watching:configuration:)`` before anything subscribes, or the engine starts with
    /// the defaults on the first subscription.
    public struct Configuration: Sendable, Hashable {
        /// How records reach Swift.
        public enum Delivery: Sendable, Hashable {
            /// The thread that holds the wait role drains the ring after each batch and feeds every subscription.
            case automatic
            /// Records stay in the ring until ``SignalEngine/drain(max:)`` takes them; subscriptions get
            /// nothing. Counters and pollers work the same. While the ring has no room for a batch, the engine
            /// takes nothing more from the kernel (signals wait there), so nothing is dropped.
            case manual
        }

        /// Records the ring holds: a power of two, 2...65 536.
        public var ringCapacity: Int
        /// Deliveries the role holder takes before it hands a batch to Swift (1...4096).
        public var batchLimit: Int
        /// How records reach Swift. Default: ``Delivery-swift.enum/automatic``.
        public var delivery: Delivery

        /// Makes a configuration.
        ///
        /// - Parameters:
        ///   - ringCapacity: Records the ring holds (a power of two, 2...65 536). Default 8192.
        ///   - batchLimit: Deliveries per batch handed to Swift (1...4096). Default 64.
        ///   - delivery: ``Delivery-swift.enum/automatic`` (default) or ``Delivery-swift.enum/manual``.
        public init(ringCapacity: Int = 8192, batchLimit: Int = 64, delivery: Delivery = .automatic) {
            self.ringCapacity = ringCapacity
            self.batchLimit = batchLimit
            self.delivery = delivery
        }

        func validate() throws(SignalError) {
            guard ringCapacity >= 2, ringCapacity <= Int(CSIGNAL_RING_MAX_CAPACITY), ringCapacity.nonzeroBitCount == 1
            else { throw .invalidConfiguration("ringCapacity must be a power of two in 2...65536, not \(ringCapacity)") }
            guard (1...4096).contains(batchLimit)
            else { throw .invalidConfiguration("batchLimit must be in 1...4096, not \(batchLimit)") }
        }
    }
}
