import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A subscription for code that is not async: ``next(timeout:)`` blocks the calling thread, ``drain(max:)`` takes
/// what arrived. Made by ``SignalEngine/subscription(for:buffering:)``.
public final class SignalSubscription: @unchecked Sendable {
    // @unchecked: every mutable field is touched only inside `gate`'s calls.
    /// The signals this subscription receives.
    public let signals: SignalSet
    private weak var engine: SignalEngine?
    private let gate = Gate()
    private var queue: EventBuffer
    private var closed = false
    /// Set by ``wake()``, consumed by the next (or current) ``next(timeout:)``.
    private var wakePending = false
    var id: UInt64 = 0

    init(signals: SignalSet, buffering: SignalBuffering, engine: SignalEngine) {
        self.signals = signals
        queue = EventBuffer(policy: buffering, signals: signals.mask)
        self.engine = engine
    }

    /// Called by the pump, in ring order.
    func enqueue(_ event: SignalEvent) {
        gate.update {
            if !closed { _ = queue.append(event) }
        }
    }

    func close() {
        gate.update {
            closed = true
            queue.releaseHold()
        }
    }

    /// The next event, waiting up to `timeout`. Nil on timeout, or when the subscription ended and is empty.
    ///
    /// While it waits, the calling thread borrows the wait thread's role when it can (no other thread borrows
    /// it, and the engine delivers automatically): the kernel then wakes this thread directly, and it records
    /// and hands over deliveries for every subscription, exactly as the wait thread would. Otherwise it sleeps
    /// until the wait thread hands it an event. Must not be called from a task running on
    /// ``SignalEngine/executor`` (it would block the wait thread): it returns nil at once there.
    public func next(timeout: Duration) -> SignalEvent? {
        let deadline = SignalSubscription.monotonicNanoseconds() &+ SignalSubscription.nanoseconds(timeout)
        if let event = take() { return event }
        if takeWake() || csignal_holds_role() { return nil }
        if let engine, engine.deliversAutomatically, csignal_borrow_begin(SignalSubscription.nanoseconds(timeout)) == 0 {
            if let event = nextAsHolder(engine: engine, deadline: deadline) { return event }
            if isClosed || SignalSubscription.monotonicNanoseconds() >= deadline || takeWake() { return take() }
        }
        let due = ContinuousClock.now + .nanoseconds(max(0, deadline &- SignalSubscription.monotonicNanoseconds()))
        var event: SignalEvent? = nil
        _ = gate.wait(due: { due }) {
            event = queue.popFirst()
            if event != nil || closed { return true }
            defer { wakePending = false }
            return wakePending
        }
        return event
    }

    /// Makes the thread blocked in ``next(timeout:)`` return now, with an event if one is there, else nil; if
    /// no thread waits, the next call returns at once instead (a wake is never lost). The subscription stays
    /// open. For code that waits for signals and for something else: the other thing calls `wake()`.
    public func wake() {
        gate.update { wakePending = true }
        // A waiter that holds the wait role sleeps in the kernel: ring it.
        csignal_engine_wake_holder()
    }

    /// Consumes a pending ``wake()``.
    private func takeWake() -> Bool {
        gate.read {
            defer { wakePending = false }
            return wakePending
        }
    }

    /// The calling thread holds the wait role: it takes deliveries from the kernel itself, pumps them to every
    /// subscription, and returns the first one of its own. Gives the role back before returning: lazily when it
    /// returns an event (a caller looping on next() takes it again without waking the wait thread, see
    /// csignal_borrow_end_lazily), at once otherwise.
    private func nextAsHolder(engine: SignalEngine, deadline: Int64) -> SignalEvent? {
        var result: SignalEvent? = nil
        defer { if result != nil { csignal_borrow_end_lazily() } else { csignal_borrow_end() } }
        // Records may be waiting in the ring (handler-route deliveries, a batch taken before the hand-over).
        engine.pump()
        while true {
            if let event = take() {
                result = event
                return event
            }
            let left = deadline &- SignalSubscription.monotonicNanoseconds()
            if left <= 0 || isClosed || gate.read({ wakePending }) { return nil }
            var pump = false
            let status = csignal_borrow_wait(left, &pump)
            if pump || csignal_ring_pending() > 0 { engine.pump() }
            if status == ECANCELED {  // setup needs the role: give it back, then wait the ordinary way
                result = take()
                return result
            }
        }
    }

    /// The oldest untaken event, without waiting.
    private func take() -> SignalEvent? {
        gate.read { queue.popFirst() }
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        if seconds >= Int64.max / 1_000_000_000 / 4 { return Int64.max / 4 }
        return max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Takes up to `max` events that arrived and were not taken yet, oldest first, without waiting.
    /// The engine's ``SignalEngine/drain(max:)`` takes records from the ring instead (manual delivery).
    public func drain(max: Int = .max) -> [SignalEvent] {
        gate.read { queue.removeFirst(max) }
    }

    /// Events dropped because the buffer was full (only with a dropping ``SignalBuffering`` policy).
    public var droppedEvents: UInt64 { gate.read { queue.dropped } }

    /// Whether the subscription ended (cancelled, or the engine stopped).
    public var isClosed: Bool { gate.read { closed } }

    /// Ends the subscription: the engine stops feeding it; waiting threads wake with nil.
    public func cancel() {
        if let engine { engine.remove(id: id) } else { close() }
    }
}
