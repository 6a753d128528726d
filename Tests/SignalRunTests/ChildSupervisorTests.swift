import ChildProcessTesting
import Testing

/// ChildSupervisor in helper processes (each one's signal state is its own).
@Suite("ChildSupervisor")
struct ChildSupervisorTests {
    func run(_ arguments: [String]) throws -> (ProcessExit, [String: String], [String]) {
        let helper = try SignalRunProcess(helper: arguments)
        let exit = try helper.finish(within: .seconds(120))
        return (exit, helper.values(in: .stdout), helper.lines + helper.errorLines)
    }

    @Test("reaping only its own children leaves a child that other code waits for to that code",
          .timeLimit(.minutes(2)))
    func spawnedOnly() throws {
        let (exit, values, output) = try run(["spawned-only"])
        #expect(exit == .exited(0), "\(output)")
        #expect(values["child"] == "exit7")
        #expect(values["child_pid_matches"] == "true")
        #expect(values["other_state"] == "Z")
        #expect(values["other_reaped_by_owner"] == "true")
        #expect(values["other_status"] == "5")
        #expect(values["reaps"] == "1")
        #expect(values["send_after_reap"] == "ESRCH")
        #expect(values["engine_running_after_stop"] == "true")
    }

    @Test("reaping every child takes children it did not spawn too", .timeLimit(.minutes(2)))
    func allChildren() throws {
        let (exit, values, output) = try run(["all-children"])
        #expect(exit == .exited(0), "\(output)")
        #expect(values["reaped"] == "exit4")
        #expect(values["spawned"] == "false")
        #expect(values["owner_waitpid"] == "ECHILD")
    }

    @Test("1000 spawned children, all reaped, each exit reported once", .timeLimit(.minutes(3)))
    func burst() throws {
        let (exit, values, output) = try run(["burst", "1000"])
        #expect(exit == .exited(0), "\(output)")
        #expect(values["spawned"] == "1000")
        #expect(values["exited0"] == "1000")
        #expect(values["reported"] == "1000")
        #expect(values["distinct"] == "1000")
        #expect(values["running"] == "0")
        #expect(values["zombies"] == "0")
    }
}
