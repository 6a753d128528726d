import CSignalShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A subscription for code that is not async: ``next(timeout:)`` blocks the calling thread, ``drain()`` takes
/// what arrived. Made by ``SignalEngine/subscribe(to:bufferingLimit:)``.
public final class SignalSubscription: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `mutex`, a pthread mutex paired with `condition` (the
    // toolchain's Mutex has no condition variable).
    /// The signals this subscription receives.
    public let signals: SignalSet
    private weak var engine: SignalEngine?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var queue: BoundedEventQueue
    private var closed = false
    /// Ring sequence of an event ``next(timeout:)`` already returned directly (0: none).
    private var skippedSequence: UInt64 = 0
    var id: UInt64 = 0

    init(signals: SignalSet, limit: Int, engine: SignalEngine) {
        self.signals = signals
        queue = BoundedEventQueue(limit: limit)
        self.engine = engine
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    func enqueue(_ event: SignalEvent) {
        locked {
            if closed { return }
            if event.sequence == skippedSequence {
                skippedSequence = 0
                return
            }
            if queue.append(event) { pthread_cond_signal(condition) }
        }
    }

    func close() {
        locked {
            closed = true
            pthread_cond_broadcast(condition)
        }
    }

    /// The next event, waiting up to `timeout`. Nil on timeout, or when the subscription ended and is empty.
    ///
    /// While it waits, the calling thread borrows the wait thread's role when it can (no other thread borrows
    /// it, and the engine delivers automatically): the kernel then wakes this thread directly, and it records
    /// and hands over deliveries for every subscription, exactly as the wait thread would. Otherwise it sleeps
    /// until the wait thread hands it an event.
    public func next(timeout: Duration) -> SignalEvent? {
        let deadline = SignalSubscription.monotonicNanoseconds() &+ SignalSubscription.nanoseconds(timeout)
        if let event = take() { return event }
        if let engine, engine.deliversAutomatically, csignal_borrow_begin(SignalSubscription.nanoseconds(timeout)) == 0 {
            // After handing over an event the role is given back lazily: a caller that loops on next() takes
            // it again without waking the wait thread in between (see csignal_borrow_end_lazily).
            var handedOver = false
            defer { if handedOver { csignal_borrow_end_lazily() } else { csignal_borrow_end() } }
            // Records left in the ring (by the previous call's direct hand-over, or a handler) go to their
            // subscriptions first; then look before sleeping.
            if csignal_ring_pending() > 0 { engine.waitThreadNotified() }
            if let event = take() {
                handedOver = true
                return event
            }
            while true {
                let left = deadline &- SignalSubscription.monotonicNanoseconds()
                if left <= 0 { return take() }
                var notify = false
                var matched = false
                var record = csignal_record()
                let result = csignal_borrow_wait(left, signals.mask, &record, &matched, &notify)
                if matched {
                    // Ours: return it. The ring (which holds it too) is handed over skipping it for this
                    // subscription: now, when more deliveries came with it, else when the wait thread is back.
                    skip(sequence: record.sequence)
                    if notify { engine.waitThreadNotified() }
                    handedOver = true
                    return SignalEvent(record)
                }
                if notify { engine.waitThreadNotified() }
                if let event = take() {
                    handedOver = true
                    return event
                }
                if result == ETIMEDOUT { return nil }
                if result == ECANCELED || isClosed { break }
            }
        }
        var until = timespec()
        until.tv_sec = Int(deadline / 1_000_000_000)
        until.tv_nsec = Int(deadline % 1_000_000_000)
        return locked {
            while queue.isEmpty {
                if closed { return nil }
                if pthread_cond_timedwait(condition, mutex, &until) == ETIMEDOUT, queue.isEmpty { return nil }
            }
            return queue.popFirst()
        }
    }

    private func skip(sequence: UInt64) {
        guard sequence != 0 else { return }  // dropped from the ring: nobody will hand it over again
        locked { skippedSequence = sequence }
    }

    /// The oldest untaken event, without waiting.
    private func take() -> SignalEvent? {
        locked { queue.popFirst() }
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        if seconds >= Int64.max / 1_000_000_000 { return Int64.max / 2 }
        return max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Everything that arrived and was not taken yet, oldest first.
    public func drain() -> [SignalEvent] {
        locked { queue.removeAll() }
    }

    /// Events lost because the buffer held `bufferingLimit` untaken events.
    public var droppedEvents: UInt64 { locked { queue.dropped } }

    /// Whether the subscription ended (cancelled, or the engine stopped).
    public var isClosed: Bool { locked { closed } }

    /// Ends the subscription: the engine stops feeding it; waiting threads wake with nil.
    public func cancel() {
        if let engine { engine.remove(id: id) } else { close() }
    }
}
