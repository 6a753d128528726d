import Synchronization

/// The deliveries of a set of signals, as an asynchronous sequence. Made by
/// ``SignalEngine/events(for:bufferingLimit:)``.
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

    /// Events this subscription lost because its buffer was full.
    public var droppedEvents: UInt64 { channel.droppedEvents }
}

/// Removes a subscription from the engine when the last sequence or iterator that holds it goes away.
final class SubscriptionLifetime: Sendable {
    let end: @Sendable () -> Void
    init(end: @escaping @Sendable () -> Void) { self.end = end }
    deinit { end() }
}

/// The buffer between the role holder, which delivers events, and one consuming task.
///
/// A waiting consumer is resumed directly with the event (no buffering, no intermediate stream); otherwise the
/// event waits in a bounded buffer and further ones are counted as dropped.
final class EventChannel: Sendable {
    private struct State {
        var queue: BoundedEventQueue
        var waiting: UnsafeContinuation<SignalEvent?, Never>? = nil
        var finished = false
    }

    private let state: Mutex<State>
    /// Set once by the engine after registration: what cancellation does besides finishing.
    private let onCancel = Mutex<(@Sendable () -> Void)?>(nil)

    init(limit: Int) {
        state = Mutex(State(queue: BoundedEventQueue(limit: limit)))
    }

    func setCancelAction(_ action: @escaping @Sendable () -> Void) { onCancel.withLock { $0 = action } }

    /// Called by the role holder, in ring order.
    func deliver(_ event: SignalEvent) {
        let consumer = state.withLock { state -> UnsafeContinuation<SignalEvent?, Never>? in
            if state.finished { return nil }
            if let waiting = state.waiting {
                state.waiting = nil
                return waiting
            }
            state.queue.append(event)
            return nil
        }
        consumer?.resume(returning: event)
    }

    /// Ends the sequence: a waiting consumer gets nil; buffered events are still handed out first.
    func finish() {
        let consumer = state.withLock { state -> UnsafeContinuation<SignalEvent?, Never>? in
            state.finished = true
            defer { state.waiting = nil }
            return state.queue.isEmpty ? state.waiting : nil
        }
        consumer?.resume(returning: nil)
    }

    var droppedEvents: UInt64 { state.withLock { $0.queue.dropped } }

    func next() async -> SignalEvent? {
        // Fast path, the common case under load: an event is already waiting. No continuation, no cancellation
        // handler.
        if !Task.isCancelled, let event = state.withLock({ $0.queue.popFirst() }) { return event }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<SignalEvent?, Never>) in
                let cancelled = Task.isCancelled
                let immediate = state.withLock { state -> SignalEvent?? in
                    if cancelled { return .some(nil) }
                    if let event = state.queue.popFirst() { return .some(event) }
                    if state.finished { return .some(nil) }
                    precondition(state.waiting == nil, "SignalEvents iterated by two tasks at once")
                    state.waiting = continuation
                    return .none
                }
                if let result = immediate { continuation.resume(returning: result) }
            }
        } onCancel: {
            let action = onCancel.withLock { $0 }
            finish()
            action?()
        }
    }
}
