import Synchronization

/// The deliveries of a set of signals, as an asynchronous sequence. Made by
/// ``SignalEngine/events(for:buffering:)``.
///
/// One subscription: iterate it from one task at a time (two tasks waiting in `next()` at once is a programming
/// error and traps, as with `AsyncStream`). For several consumers, ask the engine for several sequences; each
/// sees every event of its set. The subscription ends when the iterating task is cancelled, when the engine
/// stops, or when the last copy of the sequence and its iterators is gone.
public struct SignalEvents: AsyncSequence, Sendable {
    /// The deliveries, one ``SignalEvent`` each.
    public typealias Element = SignalEvent
    /// The sequence never throws: it ends instead.
    public typealias Failure = Never

    let channel: EventChannel
    let lifetime: SubscriptionLifetime

    /// Iterates the deliveries of one ``SignalEvents`` sequence.
    public struct AsyncIterator: AsyncIteratorProtocol {
        /// The deliveries, one ``SignalEvent`` each.
        public typealias Element = SignalEvent
        /// The iterator never throws: it returns nil at the end.
        public typealias Failure = Never
        let channel: EventChannel
        let lifetime: SubscriptionLifetime

        /// The next delivery, or nil when the subscription ended (the task was cancelled, or the engine stopped).
        public mutating func next() async -> SignalEvent? { await channel.next() }

        /// The next delivery, or nil when the subscription ended.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> SignalEvent? {
            await channel.next()
        }
    }

    /// Makes the iterator. Iterate from one task at a time.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel, lifetime: lifetime) }

    /// Events this subscription dropped because its buffer was full (only with a dropping
    /// ``SignalBuffering`` policy; the default holds signals back in the kernel instead and drops nothing).
    public var droppedEvents: UInt64 { channel.droppedEvents }
}

/// Removes a subscription from the engine when the last sequence or iterator that holds it goes away.
final class SubscriptionLifetime: Sendable {
    let end: @Sendable () -> Void
    init(end: @escaping @Sendable () -> Void) { self.end = end }
    deinit { end() }
}
