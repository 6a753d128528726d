import SignalCore
import SignalCoreLifecycle
import Testing

/// Decoding `waitpid` status words into ChildExit.
@Suite("ChildExit")
struct ChildExitTests {
    @Test("exit statuses, signals, core dumps; stopped and continued are not exits")
    func decoding() {
        #expect(ChildExit(pid: 7, waitStatus: 0x0000) == ChildExit(pid: 7, termination: .exited(0)))
        #expect(ChildExit(pid: 7, waitStatus: 0x0300) == ChildExit(pid: 7, termination: .exited(3)))
        #expect(ChildExit(pid: 7, waitStatus: 0xff00) == ChildExit(pid: 7, termination: .exited(255)))
        #expect(ChildExit(pid: 7, waitStatus: 15) == ChildExit(pid: 7, termination: .signalled(.sigterm)))
        #expect(ChildExit(pid: 7, waitStatus: 11 | 0x80)
                == ChildExit(pid: 7, termination: .signalled(.sigsegv), coreDumped: true))
        #expect(ChildExit(pid: 7, waitStatus: 0x137f) == nil)  // stopped by SIGSTOP
        #expect(ChildExit(pid: 7, waitStatus: 0xffff) == nil)  // continued
    }

    @Test("shell statuses and descriptions")
    func shellStatus() {
        #expect(ChildExit(pid: 7, termination: .exited(3)).shellStatus == 3)
        #expect(ChildExit(pid: 7, termination: .signalled(.sigterm)).shellStatus == 143)
        #expect(ChildExit(pid: 7, termination: .signalled(.sigkill)).shellStatus == 137)
        #expect(ChildExit(pid: 7, termination: .exited(3)).description == "pid 7 exited with status 3")
        #expect(ChildExit(pid: 7, termination: .signalled(.sigsegv), coreDumped: true).description
                == "pid 7 was killed by SIGSEGV (core dumped)")
    }
}
