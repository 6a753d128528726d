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
    private let limit: Int
    private weak var engine: SignalEngine?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var buffer: [SignalEvent] = []
    private var head = 0
    private var closed = false
    private var dropped: UInt64 = 0
    var id: UInt64 = 0

    init(signals: SignalSet, limit: Int, engine: SignalEngine) {
        self.signals = signals
        self.limit = limit
        self.engine = engine
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        buffer.reserveCapacity(min(limit, 1024))
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
            if buffer.count - head >= limit {
                dropped += 1
                return
            }
            if head > 0, head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            }
            buffer.append(event)
            pthread_cond_signal(condition)
        }
    }

    func close() {
        locked {
            closed = true
            pthread_cond_broadcast(condition)
        }
    }

    /// The next event, waiting up to `timeout`. Nil on timeout, or when the subscription ended and is empty.
    public func next(timeout: Duration) -> SignalEvent? {
        let (seconds, attoseconds) = timeout.components
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        var totalNanoseconds = Int64(now.tv_nsec) + attoseconds / 1_000_000_000
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + Int(seconds) + Int(totalNanoseconds / 1_000_000_000)
        totalNanoseconds %= 1_000_000_000
        deadline.tv_nsec = Int(totalNanoseconds)
        return locked {
            while head == buffer.count {
                if closed { return nil }
                if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT, head == buffer.count {
                    return nil
                }
            }
            let event = buffer[head]
            head += 1
            return event
        }
    }

    /// Everything that arrived and was not taken yet, oldest first.
    public func drain() -> [SignalEvent] {
        locked {
            let events = Array(buffer[head...])
            buffer.removeAll(keepingCapacity: true)
            head = 0
            return events
        }
    }

    /// Events lost because the buffer held `bufferingLimit` untaken events.
    public var droppedEvents: UInt64 { locked { dropped } }

    /// Whether the subscription ended (cancelled, or the engine stopped).
    public var isClosed: Bool { locked { closed } }

    /// Ends the subscription: the engine stops feeding it; waiting threads wake with nil.
    public func cancel() {
        if let engine { engine.remove(id: id) } else { close() }
    }
}
