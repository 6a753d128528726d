#if canImport(Glibc)
import Glibc
#endif

/// How a child process uses the kernel's queue of pending real-time signals.
///
/// `RLIMIT_SIGPENDING` is checked against the pending signals of the whole *user*, all processes together, and
/// tests run in parallel as the same user. A scenario that lowers its own limit to a few dozen to provoke
/// `EAGAIN` therefore fails whenever another test holds more than that many signals queued at the moment. Such
/// scenarios take the queue exclusively; every other child takes it shared (and so waits while an exclusive one
/// runs). A file lock, so that it also orders children of different test processes.
public enum SignalQueueAccess: Sendable {
    case shared
    case exclusive
}

/// A held `flock` on the test suites' lock file; released when this object goes away.
final class SignalQueueLock {
    static let path = "/tmp/signalcore-tests-signal-queue.lock"
    private let fd: CInt

    init(_ access: SignalQueueAccess, timeout: Duration = .seconds(300)) throws {
        fd = open(SignalQueueLock.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw ChildProcessError.system(call: "open(\(SignalQueueLock.path))", errno: errno) }
        let operation = (access == .exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        let deadline = ContinuousClock.now + timeout
        while flock(fd, operation) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR, ContinuousClock.now < deadline else {
                close(fd)
                throw ChildProcessError.system(call: "flock(\(SignalQueueLock.path))", errno: code)
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 2_000_000)
            nanosleep(&pause, nil)
        }
    }

    deinit { close(fd) }
}
