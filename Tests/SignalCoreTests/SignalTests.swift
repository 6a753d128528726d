import CSignalShim
import ChildProcessTesting
@testable import SignalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Pure value types: no process state is touched, so these run in this process.
@Suite struct SignalValueTests {
    @Test func names() {
        #expect(Signal.sigterm.description == "SIGTERM")
        #expect(Signal.sighup.description == "SIGHUP")
        #expect(Signal.realtimeMinimum.description == "SIGRTMIN")
        #expect(Signal.realtime(3).description == "SIGRTMIN+3")
        #expect(Signal(99).description == "SIG99")
        #expect(Signal(name: "TERM") == .sigterm)
        #expect(Signal(name: "sigusr1") == .sigusr1)
        #expect(Signal(name: "15") == .sigterm)
        #expect(Signal(name: "SIGRTMIN+2") == .realtime(2))
        #expect(Signal(name: "RTMAX-1") == Signal(Signal.realtimeMaximum.rawValue - 1))
        #expect(Signal(name: "SIGNOPE") == nil)
        // As the user wrote them: SIGRTMAX is SIGRTMAX, and the upper half counts down from it, like `kill -l`.
        #expect(Signal.realtimeMaximum.description == "SIGRTMAX")
        #expect(Signal(63).description == "SIGRTMAX-1")
        #expect(Signal(49).description == "SIGRTMIN+15")
        #expect(Signal(50).description == "SIGRTMAX-14")
        #expect(Signal(name: Signal(50).description) == Signal(50))
    }

    @Test func realtimeRangeFollowsLibc() {
        #expect(Signal.realtimeMinimum.rawValue == 34)  // glibc keeps 32 and 33
        #expect(Signal.realtimeMaximum.rawValue == 64)
        #expect(Signal.realtime(0).isRealtime)
        #expect(!Signal.sigusr1.isRealtime)
        #expect(SignalSet.realtime.count == 31)
        #expect(SignalSet.realtime.contains(.realtimeMaximum))
    }

    @Test func setAlgebra() {
        var set: SignalSet = [.sigterm, .sigint]
        #expect(set.contains(.sigterm))
        #expect(!set.contains(.sighup))
        #expect(set.count == 2)
        set.insert(.sighup)
        #expect(Array(set) == [.sighup, .sigint, .sigterm])
        set.remove(.sigint)
        #expect(set == [.sighup, .sigterm])
        #expect(set.union([.sigusr1]).count == 3)
        #expect(set.description == "[SIGHUP, SIGTERM]")
        let bad: SignalSet = [.sigusr1, Signal(70)]
        #expect(bad.count == 1)
        #expect(bad.rejectedNumber == 70)
        // The refused number takes no part in equality or hashing: both sets hold the same members.
        #expect(bad == [.sigusr1])
        #expect(Set([bad, SignalSet([.sigusr1])]).count == 1)
    }

    @Test func eventCodesAreTypedAndNamed() {
        #expect(SignalEvent.Code.queue.rawValue == -1)
        #expect(SignalEvent.Code(rawValue: -6) == .tkill)
        #expect(SignalEvent.Code.tkill.description == "SI_TKILL")
        #expect(SignalEvent.Code(rawValue: 1).description == "si_code 1")
    }

    @Test func errorsNameTheCallAndErrno() {
        let error = SignalError.system(call: "sigaction", errno: EINVAL)
        #expect(error.description == "sigaction: Invalid argument (errno: 22)")
        #expect(error.errno == EINVAL)
        #expect(SignalError.uncatchable(.sigkill).description == "SIGKILL cannot be caught, blocked or ignored")
    }
}

@Suite struct EventBufferTests {
    @Test func bufferingOldestRefusesPastTheLimitAndCounts() {
        var buffer = EventBuffer(policy: .bufferingOldest(3), signals: SignalSet.bit(.sigusr1))
        for i in 1...5 { buffer.append(SignalEvent(signal: .sigusr1, value: CInt(i))) }
        #expect(buffer.count == 3)
        #expect(buffer.dropped == 2)
        #expect(buffer.popFirst()?.value == 1)
        #expect(buffer.removeAll().map(\.value) == [2, 3])
        #expect(buffer.isEmpty)
    }

    @Test func bufferingNewestDropsTheOldest() {
        var buffer = EventBuffer(policy: .bufferingNewest(3), signals: SignalSet.bit(.sigusr1))
        for i in 1...5 { buffer.append(SignalEvent(signal: .sigusr1, value: CInt(i))) }
        #expect(buffer.dropped == 2)
        #expect(buffer.removeAll().map(\.value) == [3, 4, 5])
    }

    @Test func backPressureKeepsEverythingAndHoldsUntilHalfIsTaken() {
        var buffer = EventBuffer(policy: .backPressure(limit: 4), signals: SignalSet.bit(.sigusr2))
        for i in 1...3 { buffer.append(SignalEvent(signal: .sigusr2, value: CInt(i))) }
        #expect(!buffer.holding)
        buffer.append(SignalEvent(signal: .sigusr2, value: 4))
        #expect(buffer.holding)
        #expect(SignalSet(mask: csignal_held()).contains(.sigusr2))
        buffer.append(SignalEvent(signal: .sigusr2, value: 5))  // taken from the kernel before the hold: kept
        #expect(buffer.count == 5 && buffer.dropped == 0)
        _ = buffer.popFirst()
        _ = buffer.popFirst()
        #expect(buffer.holding)  // 3 left: above half the limit
        _ = buffer.popFirst()
        #expect(!buffer.holding)  // 2 left: the signal flows again
        #expect(!SignalSet(mask: csignal_held()).contains(.sigusr2))
        #expect(buffer.removeAll().map(\.value) == [4, 5])
    }

    @Test func aConsumerThatNeverCatchesUpDoesNotGrowTheStorage() {
        var buffer = EventBuffer(policy: .bufferingOldest(100), signals: SignalSet.bit(.sigusr1))
        buffer.append(SignalEvent(signal: .sigusr1, value: 0))
        for i in 1...100_000 {
            buffer.append(SignalEvent(signal: .sigusr1, value: CInt(i)))
            #expect(buffer.popFirst()?.value == CInt(i - 1))
        }
        #expect(buffer.count == 1)
        #expect(buffer.slotsInUse <= 130)
        #expect(buffer.dropped == 0)
    }
}

/// Starts a scenario of SignalCoreTestHelper in its own process (signal state is process-global).
func startHelper(_ arguments: [String]) throws -> SpawnedProcess {
    try SpawnedProcess("SignalCoreTestHelper", arguments)
}

/// Runs a scenario of SignalCoreTestHelper that needs nothing from this process, to its end.
func runHelper(_ arguments: [String]) throws -> (SpawnedProcess, ProcessExit) {
    try SpawnedProcess.run("SignalCoreTestHelper", arguments, timeout: .seconds(60))
}

/// Engine scenarios, each in its own helper process (signal state is process-global).
@Suite struct EngineScenarioTests {
    @Test func roundTripSeenExactlyOnceWithSenderAndCode() throws {
        let helper = try startHelper(["roundtrip"])
        try helper.waitForLine(startingWith: "READY")
        #expect(kill(helper.pid, SIGUSR1) == 0)
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty, "\(helper.failures)")
        let v = helper.values
        #expect(v["signal"] == "\(SIGUSR1)")
        #expect(v["pid"] == "\(getpid())")
        #expect(v["uid"] == "\(getuid())")
        #expect(v["code"] == "0")  // SI_USER: sent with kill
        #expect(v["route"] == "waitThread")
        #expect(v["blocking_extra"] == "0")
        #expect(v["async_count"] == "1")
        #expect(v["delivered"] == "1")
        #expect(v["via_waiter"] == "1")
        #expect(v["via_handler"] == "0")
    }

    /// A separate sender (this process) queues `n` values with sigqueue, retrying on EAGAIN; returns the retries.
    func queueValues(_ n: Int, to pid: pid_t) throws -> Int {
        let deadline = ContinuousClock.now + .seconds(120)
        var retries = 0
        for value in 1...n {
            retries += try queueSignal(Signal.realtimeMinimum.rawValue, to: pid, value: CInt(value), deadline: deadline)
        }
        return retries
    }

    @Test(arguments: ["rt-order", "rt-order-await"])
    func aHundredThousandQueuedRealtimeSignalsArriveOnceEachInOrderWithTheDefaults(scenario: String) throws {
        let n = 100_000
        let helper = try startHelper([scenario, "\(n)"])
        try helper.waitForLine(startingWith: "READY")
        let retries = try queueValues(n, to: helper.pid)
        let exit = try helper.finish(timeout: .seconds(180))
        #expect(exit == .exited(0), "\(helper.lines)")
        print("\(scenario): sent \(n), EAGAIN retries \(retries), child says: \(helper.lines.last ?? "")")
        #expect(helper.int("received") == n)
        #expect(helper.int("first_out_of_order") == -1)
        #expect(helper.int("delivered") == n)
        #expect(helper.int("dropped") == 0)
    }

    @Test func tenThousandQueuedRealtimeSignalsArriveInOrder() throws {
        let n = 10_000
        let helper = try startHelper(["rt-order", "\(n)"])
        try helper.waitForLine(startingWith: "READY")
        let deadline = ContinuousClock.now + .seconds(60)
        var retries = 0
        for value in 1...n {
            retries += try queueSignal(Signal.realtimeMinimum.rawValue, to: helper.pid, value: CInt(value), deadline: deadline)
        }
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        print("rt-order: sent \(n), EAGAIN retries \(retries), child says: \(helper.lines.last ?? "")")
        #expect(helper.int("received") == n)
        #expect(helper.int("first_out_of_order") == -1)
        #expect(helper.int("delivered") == n)
        #expect(helper.int("dropped") == 0)
        #expect(helper.int("subscription_dropped") == 0)
    }

    @Test func anAsyncMainProgramGetsAHundredThousandRealtimeSignalsInOrderThroughTheWaitThread() throws {
        let n = 100_000
        let helper = try SpawnedProcess("SignalCoreAsyncMainHelper", ["order", "\(n)"])
        try helper.waitForLine(startingWith: "READY")
        let retries = try queueValues(n, to: helper.pid)
        let exit = try helper.finish(timeout: .seconds(180))
        #expect(exit == .exited(0), "\(helper.lines)")
        print("async main: sent \(n), EAGAIN retries \(retries), child says: \(helper.lines.suffix(2))")
        // libdispatch's parked main thread was taken over, so the wait thread is the only dequeuer.
        #expect(helper.value("adopted_parker") == "\(helper.pid)")
        #expect(helper.value("main_role") == "adoptedMainThread")
        #expect(helper.int("received_last") == n)
        #expect(helper.int("out_of_order") == 0)
        #expect(helper.int("via_handler") == 0)
        #expect(helper.int("delivered") == n)
        #expect(helper.int("dropped") == 0)
    }

    @Test func startBlocksEveryPreexistingThreadButTheWaitThread() throws {
        let (helper, exit) = try runHelper(["audit"])
        #expect(exit == .exited(0), "\(helper.lines)")
        let threads = helper.lines.filter { $0.hasPrefix("thread ") }
        print("audit:\n" + helper.lines.joined(separator: "\n"))
        #expect(helper.int("threads_before")! >= 7)  // main + 3 pthreads + pool and Dispatch workers
        #expect(threads.count == helper.int("threads_before")! + 1)  // + the wait thread
        let waiters = threads.filter { $0.contains("waiter=1") }
        #expect(waiters.count == 1)
        #expect(waiters.first?.contains("name=signalcore") == true)
        #expect(threads.filter { $0.contains("waiter=0") }.allSatisfy { $0.contains("blocked=1") })
        #expect(helper.int("delivered") == 20)
        #expect(helper.int("via_waiter") == 20)
        #expect(helper.int("via_handler") == 0)
    }

    @Test func deliveryForcedOntoAnotherThreadTakesTheHandlerRoute() throws {
        let (helper, exit) = try runHelper(["handler-route"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.value("route") == "handler")
        #expect(helper.value("tid") == helper.value("thread_tid"))
        #expect(helper.value("pid") == helper.value("own_pid"))
        #expect(helper.int("code") == -6)  // SI_TKILL
        #expect(helper.int("delivered") == 1)
        #expect(helper.int("via_handler") == 1)
        #expect(helper.int("via_waiter") == 0)
    }

    @Test func stopRestoresDispositionsAndMasksAndStartWorksAgain() throws {
        let (helper, exit) = try runHelper(["restore"])
        #expect(exit == .exited(0), "\(helper.lines)")
        let checks = (1...3).flatMap { cycle in
            [
                "engine handlers installed", "SIGHUP blocked while running", "SIGUSR1 received", "subscription ended by stop",
                "SIG_IGN restored", "foreign handler restored", "SIG_DFL restored", "mask restored", "wait thread gone",
            ].map { "cycle \(cycle): \($0)" }
        }
        #expect(helper.unmetChecks(checks) == [])
        #expect(helper.int("foreign_hits") == 1)
    }

    @Test func badInputIsRefusedAndChangesNothing() throws {
        let (helper, exit) = try runHelper(["bad-input"])
        #expect(exit == .exited(0), "\(helper.lines)")
        let refused: [CInt] = [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, 0, -3, 65, 32, 33]
        let checks = refused.map { "start with \($0)" } + refused.map { "subscribe to \($0)" } + [
            "ring 1000",
            "not running after refusals", "SIGUSR1 disposition untouched", "SIGUSR1 not blocked", "no thread created",
            "no subscription left by refusals", "stop while stopped", "unwatch while stopped",
            "second start", "second start made no thread",
        ] + refused.map { "watch \($0)" } + ["watch \(Signal.realtimeMaximum.rawValue)"] + [
            "watched set unchanged", "SIGUSR2 disposition untouched",
            "ignore a watched signal", "ignore SIGKILL", "send 99",
            "engine handler still installed", "unwatch a claimed signal", "unwatch after the last subscription",
        ]
        #expect(helper.unmetChecks(checks) == [])
        #expect(helper.lines.last == "done")
    }

    @Test func aSmallRingDrainedByHandHoldsSignalsInTheKernelAndDropsNothing() throws {
        let n = 100
        let helper = try startHelper(["overflow", "\(n)"])
        try helper.waitForLine(startingWith: "READY")
        let deadline = ContinuousClock.now + .seconds(30)
        for value in 1...n { try queueSignal(Signal.realtimeMinimum.rawValue, to: helper.pid, value: CInt(value), deadline: deadline) }
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.int("records") == n)
        #expect(helper.int("in_order") == 1)
        #expect(helper.int("delivered") == n)
        #expect(helper.int("dropped") == 0)
        #expect(helper.int("total_dropped") == 0)
    }

    @Test func idleWaitThreadDoesNotWakeUp() throws {
        let (helper, exit) = try runHelper(["idle", "3"])
        #expect(exit == .exited(0), "\(helper.lines)")
        print("idle: \(helper.lines.last ?? "")")
        #expect(helper.int("wakeups") == 0)
    }

    @Test func independentAsyncSubscribersAndCancellation() throws {
        let (helper, exit) = try runHelper(["subscribers"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.int("subscriptions") == 3)
        #expect(helper.lines.contains("a=[10, 10, 10] b=[10, 10, 12, 10] c=[12]"))
        #expect(helper.value("cancelled_task") == "ended")
        #expect(helper.int("subscriptions_after") == 0)
    }

    @Test func blockingWaitTimesOutAndReceives() throws {
        let (helper, exit) = try runHelper(["blocking-wait"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.value("timeout_result") == "none")
        #expect(helper.int("waited_ms")! >= 300)
        #expect(helper.int("signal") == Int(SIGUSR1))
    }

    @Test func watchAndUnwatchOnARunningEngine() throws {
        let (helper, exit) = try runHelper(["watch-running"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.unmetChecks([
            "watched set grew", "SIGUSR2 received after watch", "unwatch refused while subscribed",
            "still watched after the last subscription ended", "watched set shrank", "SIGUSR2 back to SIG_IGN",
            "SIGUSR2 unblocked again", "others still blocked", "SIGHUP still received", "SIGUSR2 counted once",
        ]) == [])
    }

    @Test func pollCountsNewDeliveries() throws {
        let (helper, exit) = try runHelper(["poll"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.unmetChecks(["nothing before sending", "hasNew after sending"]) == [])
        #expect(helper.int("first_poll") == 5)
        #expect(helper.int("second_poll") == 0)
    }

    @Test func executorResumesTasksOnTheWaitThread() throws {
        let (helper, exit) = try runHelper(["executor"])
        #expect(exit == .exited(0), "\(helper.lines)")
        let waiter = try #require(helper.value("waiter"))
        #expect(helper.value("resumed_on") == [waiter, waiter, waiter].joined(separator: ","))
        #expect(helper.int("after_stop_ran") == 1)
        #expect(helper.value("stop_on_wait_thread") == "refused")
    }

    @Test func aJobThatCrashesOnTheWaitThreadGetsTheRuntimesBacktrace() throws {
        let (helper, exit) = try SpawnedProcess.run(
            "SignalCoreTestHelper", ["executor-crash"], standardError: .mergedWithOutput, timeout: .seconds(60))
        #expect(exit == .signalled(SIGILL), "\(helper.transcript)")
        let waiter = try #require(helper.value("waiter"))
        #expect(helper.value("crashing_on") == waiter, "the job ran on the wait thread")
        // The backtracer suspended every thread, the wait thread included, and names it as the one that crashed.
        #expect(helper.lines.contains { $0.hasPrefix("Thread ") && $0.hasSuffix("\"signalcore\" crashed:") },
                "\(helper.transcript)")
        #expect(!helper.transcript.contains("failed to suspend"), "\(helper.transcript)")
        #expect(helper.transcript.contains("Fatal error: Index out of range"))
    }

    @Test func blockingWaiterBorrowsTheWaitRoleSafely() throws {
        let (helper, exit) = try runHelper(["borrow"])
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.unmetChecks([
            "SIGHUP received after watch during a borrow", "handler-route delivery handed over",
            "delivery after setup handed over",
        ]) == [])
        #expect(helper.int("a_count") == 4)
        // Each of A's events is distinct (no duplicate hand-over) and in order.
        let sequences = (helper.value("a_sequences") ?? "").split(separator: ",").compactMap { Int($0) }
        #expect(sequences.count == 4 && sequences == sequences.sorted() && Set(sequences).count == 4)
        // At least the first delivery was taken by A's own thread while it held the wait role.
        let tids = (helper.value("a_event_tids") ?? "").split(separator: ",").map(String.init)
        #expect(tids.first == helper.value("a_tid"))
        #expect(helper.int("stop_ms")! < 5000)
    }

    @Test func aBlockingLoopKeepsTheRoleBetweenCallsAndTheLeaseRunsOut() throws {
        let (helper, exit) = try runHelper(["lease"])
        #expect(exit == .exited(0), "\(helper.lines)")
        // Without the lease the wait thread wakes at least twice per round (take the role back, lend it again):
        // at least 38 times for the 19 measured rounds. With it, none, unless the machine is so loaded that the
        // consumer misses its 1 ms lease now and then.
        #expect(helper.int("waiter_wakeups_during_loop")! <= 12)
        #expect(helper.int("after_lease_signal") == Int(SIGUSR2))
        #expect(helper.value("after_lease_tid") == helper.value("waiter"))
        #expect(helper.int("after_lease_ms")! < 1000)
    }
}
