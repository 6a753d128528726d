#if canImport(Glibc)
import Glibc
#endif

/// Queues `signal` with `value` to `pid` (`sigqueue`), retrying while the kernel's queue is full, until
/// `deadline`. Returns how many EAGAIN retries it took.
@discardableResult
public func queueSignal(_ signal: CInt, to pid: pid_t, value: CInt, deadline: ContinuousClock.Instant) throws -> Int {
    var retries = 0
    while true {
        var sv = sigval()
        sv.sival_int = value
        if sigqueue(pid, signal, sv) == 0 { return retries }
        let err = errno
        guard err == EAGAIN, ContinuousClock.now < deadline else { throw ChildProcessError.system(call: "sigqueue", errno: err) }
        retries += 1
        sched_yield()
    }
}
