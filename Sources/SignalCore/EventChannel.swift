import Synchronization

/// The buffer between the role holder, which delivers events, and one consuming task.
///
/// A waiting consumer is resumed directly with the event (no buffering, no intermediate stream); otherwise the
/// event waits in the buffer, which follows the subscription's ``SignalBuffering`` policy.
final class EventChannel: Sendable {
    private struct State {
        var queue: EventBuffer
        var waiting: UnsafeContinuation<SignalEvent?, Never>? = nil
        var finished = false
    }

    private let state: Mutex<State>
    /// Set once by the engine after registration: what cancellation does besides finishing.
    private let onCancel = Mutex<(@Sendable () -> Void)?>(nil)

    init(buffering: SignalBuffering, signals: SignalSet) {
        state = Mutex(State(queue: EventBuffer(policy: buffering, signals: signals.mask)))
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

    /// Ends the sequence: a waiting consumer gets nil; buffered events are still handed out first, but the
    /// engine no longer holds signals back for them.
    func finish() {
        let consumer = state.withLock { state -> UnsafeContinuation<SignalEvent?, Never>? in
            state.finished = true
            state.queue.releaseHold()
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
