#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread mutex and a CLOCK_MONOTONIC condition variable: lets ordinary threads sleep until a state that other
/// threads change satisfies a condition. The toolchain's `Mutex` has no condition variable. Shared by the
/// package's targets (subscriptions, the lifecycle helpers, the example), not part of any product's API.
///
/// Every change goes through ``update(_:)``, which wakes the waiters; a waiter checks its condition with the
/// mutex held, so a change made between its check and its sleep is never missed. The state it guards lives with
/// the owner, which touches it only inside these calls.
package final class Gate: @unchecked Sendable {
    // @unchecked: the pointers are set once in init and used only through pthread calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
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
    @discardableResult
    package func update<T>(_ change: () -> T) -> T {
        pthread_mutex_lock(mutex)
        let result = change()
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        return result
    }

    /// Runs `read` with the mutex held, without waking anyone.
    package func read<T>(_ read: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return read()
    }

    /// Wakes every waiter so that it checks its condition again.
    package func broadcast() { update {} }

    /// Sleeps until `condition()` holds, however long that takes. For threads whose only job is to wait for
    /// events: no timer, so an idle thread is never woken.
    package func wait(until condition: () -> Bool) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition() { pthread_cond_wait(self.condition, mutex) }
    }

    /// Waits until `condition()` holds or `timeout` passes. Returns whether it holds.
    package func wait(timeout: Duration, until condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + max(timeout, .zero)
        return wait(due: { deadline }, until: condition)
    }

    /// Waits until `condition()` holds or the instant `due()` returns passes (nil: no deadline). Both are asked
    /// again, with the mutex held, after every wake-up, so an ``update(_:)`` that moves the deadline takes
    /// effect at once. Returns whether the condition holds.
    package func wait(due: () -> ContinuousClock.Instant?, until condition: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition() {
            guard let deadline = due() else {
                pthread_cond_wait(self.condition, mutex)
                continue
            }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return condition() }
            var until = Gate.monotonic(after: left)
            _ = pthread_cond_timedwait(self.condition, mutex, &until)
        }
        return true
    }

    /// CLOCK_MONOTONIC now plus `interval` (capped at a year, far beyond any deadline used here).
    private static func monotonic(after interval: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = max(interval, .zero).components
        let capped = min(seconds, 365 * 24 * 3600)
        var nanoseconds = Int64(now.tv_nsec) + attoseconds / 1_000_000_000
        var result = timespec()
        result.tv_sec = now.tv_sec + Int(capped) + Int(nanoseconds / 1_000_000_000)
        nanoseconds %= 1_000_000_000
        result.tv_nsec = Int(nanoseconds)
        return result
    }
}
