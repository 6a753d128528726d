import CSignalShim
import CSignalVerifySupport
import ChildProcessTesting
import Dispatch
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

// The output protocol and its helpers (`say`, `fail`, `check`, `must`, `waitUntil`, `milliseconds`) come from
// ChildProcessTesting, which the tests read the output with.

let clock = ContinuousClock()

func hex(_ v: UInt64) -> String { String(v, radix: 16) }

func bit(_ s: Signal) -> UInt64 { 1 << UInt64(s.rawValue - 1) }

/// SigBlk, SigIgn and SigCgt of a process from /proc/PID/status.
func procMasks(_ pid: pid_t) -> (blocked: UInt64, ignored: UInt64, caught: UInt64)? {
    var b: UInt64 = 0, i: UInt64 = 0, c: UInt64 = 0
    return csv_proc_sigmasks(pid, &b, &i, &c) == 0 ? (b, i, c) : nil
}

/// Waits for `pid` (bounded); returns "signal=N" or "exit=N".
func reap(_ pid: pid_t, timeout: Duration = .seconds(20)) -> String {
    let deadline = clock.now + timeout
    var status: CInt = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { break }
        if r < 0 && errno != EINTR { return "waitpid-errno=\(errno)" }
        if clock.now > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return "timeout"
        }
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        nanosleep(&ts, nil)
    }
    return (status & 0x7f) == 0 ? "exit=\((status >> 8) & 0xff)" : "signal=\(status & 0x7f)"
}

/// Every thread of this process must block `watched`, except the wait thread. Prints offenders.
func auditAllBlocked(_ label: String) -> Bool {
    let reports = must { try SignalEngine.shared.auditThreads() }
    let offenders = reports.filter { !$0.isWaitThread && !$0.openWatched.isEmpty }
    for o in offenders { say("unblocked_thread tid=\(o.threadID) name=\(o.name)") }
    say("\(label)_threads=\(reports.count) \(label)_unblocked=\(offenders.count)")
    return offenders.isEmpty
}
