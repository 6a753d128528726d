import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread mutex and a CLOCK_MONOTONIC condition variable: lets ordinary threads wait, with a timeout, for
/// a state that other threads change. The toolchain's `Mutex` has no condition variable.
public final class Gate: @unchecked Sendable {
    // @unchecked: the pointers are set once in init and used only through pthread calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
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

    /// Runs `change` with the mutex held, then wakes every waiter.
    public func update<T>(_ change: () -> T) -> T {
        pthread_mutex_lock(mutex)
        let result = change()
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        return result
    }

    /// Wakes every waiter so that it checks its condition again.
    public func broadcast() { update {} }

    /// Waits until `condition()` holds (checked with the mutex held) or `timeout` passes. Returns whether it
    /// holds.
    public func wait(timeout: Duration, until condition: () -> Bool) -> Bool {
        let deadline = Gate.deadline(after: timeout)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition() {
            var d = deadline
            if pthread_cond_timedwait(self.condition, mutex, &d) == ETIMEDOUT { return condition() }
        }
        return true
    }

    static func deadline(after timeout: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = max(timeout, .zero).components
        let capped = min(seconds, 365 * 24 * 3600)
        var nanoseconds = Int64(now.tv_nsec) + attoseconds / 1_000_000_000
        var result = timespec()
        result.tv_sec = now.tv_sec + Int(capped) + Int(nanoseconds / 1_000_000_000)
        nanoseconds %= 1_000_000_000
        result.tv_nsec = Int(nanoseconds)
        return result
    }
}
