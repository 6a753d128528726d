#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a pthread mutex, with a condition variable to sleep on until it changes the way a thread
/// waits for. The toolchain's `Mutex` has no condition variable.
///
/// Every change goes through ``update(_:)``, which wakes the waiters; a waiter checks its predicate with the mutex
/// held, so a change made between its check and its sleep is never missed.
final class Condition<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held; the pointers are set once in init.
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init(_ value: Value) {
        self.value = value
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

    /// Changes the value, then wakes every waiter.
    @discardableResult
    func update<T>(_ change: (inout Value) -> T) -> T {
        pthread_mutex_lock(mutex)
        let result = change(&value)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        return result
    }

    /// Reads the value.
    func read<T>(_ read: (Value) -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return read(value)
    }

    /// Sleeps until `predicate` holds, with no timeout: the thread wakes only when something changes.
    func wait(until predicate: (Value) -> Bool) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !predicate(value) { pthread_cond_wait(condition, mutex) }
    }

    /// Waits until `predicate` holds or `timeout` passes. Returns whether it holds.
    func wait(timeout: Duration, until predicate: (Value) -> Bool) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = max(timeout, .zero).components
        let nanoseconds = Int64(now.tv_nsec) + attoseconds / 1_000_000_000
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + Int(min(seconds, 365 * 86_400)) + Int(nanoseconds / 1_000_000_000)
        deadline.tv_nsec = Int(nanoseconds % 1_000_000_000)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !predicate(value) {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { return predicate(value) }
        }
        return true
    }
}
