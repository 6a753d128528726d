/// The deliveries of a set of signals, as an asynchronous sequence. Made by
/// ``SignalEngine/events(for:bufferingLimit:)``.
///
/// One subscription: iterate it from one task. For several consumers, ask the engine for several sequences;
/// each sees every event of its set.
public struct SignalEvents: AsyncSequence, Sendable {
    public typealias Element = SignalEvent
    public typealias Failure = Never

    let stream: AsyncStream<SignalEvent>
    let statistics: SubscriptionStatistics

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = SignalEvent
        public typealias Failure = Never
        var base: AsyncStream<SignalEvent>.AsyncIterator

        public mutating func next() async -> SignalEvent? { await base.next() }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> SignalEvent? {
            await base.next(isolation: actor)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }

    /// Events this subscription lost because its buffer was full.
    public var droppedEvents: UInt64 { statistics.dropped.load(ordering: .relaxed) }
}
