/// The deliveries of a set of signals, as an asynchronous sequence. Made by
/// ``SignalEngine/events(for:bufferingLimit:)``.
///
/// One subscription: iterate it from one task. For several consumers, ask the engine for several sequences;
/// each sees every event of its set.
public struct SignalEvents: AsyncSequence, Sendable {
    /// The deliveries, one ``SignalEvent`` each.
    public typealias Element = SignalEvent
    /// The sequence never throws: it ends instead.
    public typealias Failure = Never

    let stream: AsyncStream<SignalEvent>
    let statistics: SubscriptionStatistics

    /// Iterates the deliveries of one ``SignalEvents`` sequence.
    public struct AsyncIterator: AsyncIteratorProtocol {
        /// The deliveries, one ``SignalEvent`` each.
        public typealias Element = SignalEvent
        /// The iterator never throws: it returns nil at the end.
        public typealias Failure = Never
        var base: AsyncStream<SignalEvent>.AsyncIterator

        /// The next delivery, or nil when the subscription ended (cancelled, dropped, or the engine stopped).
        public mutating func next() async -> SignalEvent? { await base.next() }

        /// The next delivery, or nil when the subscription ended; runs on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> SignalEvent? {
            await base.next(isolation: actor)
        }
    }

    /// Makes the iterator. Iterate from one task only.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }

    /// Events this subscription lost because its buffer was full.
    public var droppedEvents: UInt64 { statistics.dropped.load(ordering: .relaxed) }
}
