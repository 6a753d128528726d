// A program started with swift-subprocess by a process that runs the engine starts with an empty mask and
// default dispositions, so SIGTERM ends it. (swift-subprocess resets both in the child itself.)
import CSignalVerifySupport
import ChildProcessTesting
import Foundation
import SignalCore
import Subprocess

#if canImport(Glibc)
import Glibc
#endif

let watched: SignalSet = [.sigterm, .sigint, .sighup, .sigusr1, .sigusr2, .realtime(0)]
let watchedMask = watched.reduce(UInt64(0)) { $0 | (1 << UInt64($1.rawValue - 1)) }

func commandName(_ pid: pid_t) -> String {
    ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
}

do {
    try SignalEngine.shared.start(watching: watched)
} catch { fail("start: \(error)") }

let done = DispatchSemaphore(value: 0)
Task.detached {
    do {
        let result = try await run(.path("/bin/sleep"), arguments: ["60"], input: .none, output: .discarded,
                                   error: .discarded) { execution in
            let pid = execution.processIdentifier.value
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            while commandName(pid) != "sleep" {
                if clock.now > deadline { fail("child never became sleep") }
                try await Task.sleep(for: .milliseconds(1))
            }
            var blocked: UInt64 = 0, ignored: UInt64 = 0, caught: UInt64 = 0
            if csv_proc_sigmasks(pid, &blocked, &ignored, &caught) != 0 { fail("no /proc status for \(pid)") }
            say("subprocess pid=\(pid) SigBlk=\(String(blocked, radix: 16)) SigIgn=\(String(ignored, radix: 16)) clean=\(blocked & watchedMask == 0 && ignored & watchedMask == 0 ? 1 : 0)")
            kill(pid, SIGTERM)
        }
        switch result.terminationStatus {
        case .signaled(let s): say("subprocess_ended signal=\(s)")
        case .exited(let code): say("subprocess_ended exit=\(code)")
        }
    } catch {
        say("FAIL run: \(error)")
    }
    done.signal()
}
if done.wait(timeout: .now() + 60) == .timedOut { fail("swift-subprocess run timed out") }
do { try SignalEngine.shared.stop() } catch { fail("stop: \(error)") }
say("DONE")
exit(0)
