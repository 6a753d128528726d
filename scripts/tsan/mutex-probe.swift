// Probe for scripts/verify: does ThreadSanitizer see Synchronization.Mutex as synchronisation in this toolchain?
// Two threads increment a plain integer, only ever inside Mutex.withLock. The program is race-free; if TSan
// reports a race here, it cannot see Mutex, and every report on state that SignalCore keeps behind a Mutex is
// a false positive (that is what scripts/tsan/suppressions.txt suppresses, and only while this probe reports).
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

final class Counter: @unchecked Sendable { var value = 0 }
let counter = Counter()
let lock = Mutex(())
var threads = [pthread_t](repeating: pthread_t(), count: 2)
for i in 0..<2 {
    pthread_create(&threads[i], nil, { _ in
        for _ in 0..<200_000 { lock.withLock { _ in counter.value += 1 } }
        return nil
    }, nil)
}
for i in 0..<2 { pthread_join(threads[i], nil) }
print("value=\(counter.value)")
