import Synchronization

/// The deliveries of a set of signals, as an asynchronous sequence. Made by
/// ``SignalEngine/events(for:bufferingLimit:)``.
///
/// One subscription: iterate it from one task at a time (two tasks waiting in `next()` at once is a programming
/// error and traps, as with `AsyncStream`). For several consumers, ask the engine for several sequences; each
/// sees every event of its set. The subscription ends when the iterating task is cancelled, when the engine
/// stops, or when the last copy of the sequence and its iterators is gone.
public struct SignalEvents: AsyncSequence, Sendable {
    public typealias Element = SignalEvent
    public typealias Failure = Never

    let channel: EventChannel
    let lifetime: SubscriptionLifetime

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = SignalEvent
        public typealias Failure = Never
        let channel: EventChannel
        let lifetime: SubscriptionLifetime

        public mutating func next() async -> SignalEvent? { await channel.next() }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> SignalEvent? {
            await channel.next()
        }
    }

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
        await withTaskCancellationHandler {
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
