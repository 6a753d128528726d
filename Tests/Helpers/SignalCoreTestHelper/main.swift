// Scenarios that change process-wide signal state, each run in its own process by the tests.
// Usage: SignalCoreTestHelper <scenario> [arguments]
import CSignalShim
import CSignalVerifySupport
import ChildProcessTesting
import Dispatch
import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let engine = SignalEngine.shared
guard let scenario = argument(0) else { fail("usage: SignalCoreTestHelper <scenario> [arguments]") }

switch scenario {

// The parent sends one SIGUSR1; the blocking subscription and an async subscriber each see it exactly once.
case "roundtrip":
    must { try engine.start(watching: [.sigusr1, .sigusr2]) }
    let blocking = must { try engine.subscription(for: [.sigusr1]) }
    let marker = must { try engine.subscription(for: [.sigusr2]) }
    let stream = must { try engine.events(for: [.sigusr1]) }
    let asyncSeen = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var asyncEvents: [SignalEvent] = []
    let consumer = Task.detached {
        for await event in stream {
            asyncEvents.append(event)
            asyncSeen.signal()
        }
    }
    say("READY pid=\(getpid())")
    let event = blocking.next(timeout: .seconds(10))
    say("event \(describe(event))")
    if asyncSeen.wait(timeout: .now() + 10) == .timedOut { fail("async subscriber saw nothing") }
    // Marker: our own SIGUSR2 is recorded after anything else in flight, so once it is seen, the first signal
    // cannot be handed over again unnoticed.
    must { try SignalSender.raise(.sigusr2) }
    if marker.next(timeout: .seconds(10)) == nil { fail("marker not seen") }
    consumer.cancel()
    say("blocking_extra=\(blocking.drain().count)")
    say("async_count=\(asyncEvents.count)")
    let counts = engine.counts(for: .sigusr1)
    say("delivered=\(counts.delivered) via_waiter=\(counts.viaWaitThread) via_handler=\(counts.viaHandler)")
    must { try engine.stop() }

// The parent queues N SIGRTMIN with values 1...N; all must arrive, in order, through a blocking subscription
// with the library's defaults (a thread looping on next(timeout:) borrows the wait role).
case "rt-order":
    let n = argument(1, default: 10_000)
    let rt = Signal.realtimeMinimum
    let subscription = must { try engine.subscription(for: [rt]) }
    say("READY pid=\(getpid())")
    var received = 0
    var firstBad = -1
    while received < n {
        guard let event = subscription.next(timeout: .seconds(20)) else { break }
        received += 1
        if firstBad < 0, event.value != CInt(received) { firstBad = received }
    }
    let counts = engine.counts(for: rt)
    say("received=\(received) first_out_of_order=\(firstBad) delivered=\(counts.delivered) dropped=\(counts.droppedRecords) subscription_dropped=\(subscription.droppedEvents)")
    must { try engine.stop() }

// The same through `for await` with the library's defaults, in a synchronous program whose main thread waits
// on a semaphore.
case "rt-order-await":
    let n = argument(1, default: 10_000)
    let rt = Signal.realtimeMinimum
    let events = must { try engine.events(for: [rt]) }
    let done = DispatchSemaphore(value: 0)
    let result = Mutex((received: 0, firstBad: -1))
    Task.detached {
        var received = 0
        var firstBad = -1
        for await event in events {
            received += 1
            if firstBad < 0, event.value != CInt(received) { firstBad = received }
            if received == n { break }
        }
        result.withLock { $0 = (received, firstBad) }
        done.signal()
    }
    say("READY pid=\(getpid())")
    if done.wait(timeout: .now() + 120) == .timedOut { fail("the for-await loop did not finish") }
    let (received, firstBad) = result.withLock { $0 }
    let counts = engine.counts(for: rt)
    say("received=\(received) first_out_of_order=\(firstBad) delivered=\(counts.delivered) dropped=\(counts.droppedRecords) via_handler=\(counts.viaHandler)")
    must { try engine.stop() }

// Threads exist before start: pthreads parked in a read, pool threads busy in tasks, a Dispatch worker.
case "audit":
    var fds: [CInt] = [0, 0]
    pipe(&fds)
    let readEnd = fds[0]
    let parked = (0..<3).map { _ in
        HelperThread { _ in
            var byte: UInt8 = 0
            _ = read(readEnd, &byte, 1)
        }
    }
    let poolBusy = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    for _ in 0..<2 {
        Task.detached {
            poolBusy.signal()
            _ = release.wait(timeout: .now() + 30)
        }
    }
    DispatchQueue.global().async {
        poolBusy.signal()
        _ = release.wait(timeout: .now() + 30)
    }
    for _ in 0..<3 { if poolBusy.wait(timeout: .now() + 10) == .timedOut { fail("pool threads did not start") } }
    say("threads_before=\(threadCount())")
    must { try engine.start(watching: [.sigusr1, .sighup, .sigterm]) }
    let reports = must { try engine.auditThreads() }
    for report in reports {
        say("thread tid=\(report.threadID) name=\(report.name) waiter=\(report.isWaitThread ? 1 : 0) blocked=\(report.openWatched.isEmpty ? 1 : 0)")
    }
    let spread = engine.lastMaskSpread
    say("spread passes=\(spread.passes) signalled=\(spread.signalled) unreachable=\(spread.unreachable) competing=\(spread.competing)")
    // With every thread blocked, a process-directed signal can only go to the wait thread.
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    for _ in 0..<20 {
        must { try SignalSender.raise(.sigusr1) }
        if subscription.next(timeout: .seconds(10)) == nil { fail("SIGUSR1 not seen") }
    }
    let counts = engine.counts(for: .sigusr1)
    say("delivered=\(counts.delivered) via_waiter=\(counts.viaWaitThread) via_handler=\(counts.viaHandler)")
    for _ in 0..<3 { release.signal() }
    close(fds[1])
    for t in parked { t.join() }
    must { try engine.stop() }

// A thread unblocks SIGUSR1 and gets it with tgkill: the fallback handler records it on that thread.
case "handler-route":
    must { try engine.start(watching: [.sigusr1]) }
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    let thread = HelperThread.unblocking(SIGUSR1)
    must { try SignalSender.send(.sigusr1, toThread: thread.tid) }
    let event = subscription.next(timeout: .seconds(10))
    say("event \(describe(event))")
    say("thread_tid=\(thread.tid) own_pid=\(getpid())")
    let counts = engine.counts(for: .sigusr1)
    say("delivered=\(counts.delivered) via_waiter=\(counts.viaWaitThread) via_handler=\(counts.viaHandler)")
    thread.finish.signal()
    thread.join()
    must { try engine.stop() }

// Previous dispositions (SIG_IGN, a foreign handler, SIG_DFL) and the thread mask come back on stop.
case "restore":
    must { try SignalDispositions.ignore(.sigusr1) }
    if csv_install_counting_handler(SIGUSR2) != 0 { fail("install counting handler") }
    let blockedBefore = mainThreadBlocks(.sighup)
    for cycle in 1...3 {
        must { try engine.start(watching: [.sigusr1, .sigusr2, .sighup]) }
        check(csignal_is_engine_handler(SIGUSR1) && csignal_is_engine_handler(SIGUSR2)
              && csignal_is_engine_handler(SIGHUP), "cycle \(cycle): engine handlers installed")
        check(mainThreadBlocks(.sighup), "cycle \(cycle): SIGHUP blocked while running")
        let subscription = must { try engine.subscription(for: [.sigusr1]) }
        must { try SignalSender.raise(.sigusr1) }
        check(subscription.next(timeout: .seconds(10))?.signal == .sigusr1, "cycle \(cycle): SIGUSR1 received")
        must { try engine.stop() }
        check(subscription.isClosed, "cycle \(cycle): subscription ended by stop")
        check(must { try SignalDispositions.current(.sigusr1) } == .ignore, "cycle \(cycle): SIG_IGN restored")
        check(csv_is_counting_handler(SIGUSR2), "cycle \(cycle): foreign handler restored")
        check(must { try SignalDispositions.current(.sighup) } == .default, "cycle \(cycle): SIG_DFL restored")
        check(mainThreadBlocks(.sighup) == blockedBefore, "cycle \(cycle): mask restored")
        check(engine.waitThreadID == nil && !(must { try engine.auditThreads() }.contains { $0.name == "signalcore" }),
              "cycle \(cycle): wait thread gone")
    }
    must { try SignalSender.raise(.sigusr2) }
    waitUntil("the foreign handler to run") { csv_counting_hits(SIGUSR2) == 1 }
    must { try SignalSender.raise(.sigusr1) }  // ignored: we are still here afterwards
    say("foreign_hits=\(csv_counting_hits(SIGUSR2))")

// Every bad input is refused with its own error and changes nothing.
case "bad-input":
    let threadsBefore = threadCount()
    func expect(_ expected: SignalError, _ what: String, _ body: () throws(SignalError) -> Void) {
        do {
            try body()
            check(false, what, detail: "accepted")
        } catch {
            check(error == expected, what, detail: "\(error)")
        }
    }
    let refused: [(Signal, SignalError)] = [
        (.sigkill, .uncatchable(.sigkill)), (.sigstop, .uncatchable(.sigstop)),
        (.sigsegv, .synchronous(.sigsegv)), (.sigbus, .synchronous(.sigbus)), (.sigfpe, .synchronous(.sigfpe)),
        (.sigill, .synchronous(.sigill)), (.sigtrap, .synchronous(.sigtrap)), (.sigsys, .synchronous(.sigsys)),
        (Signal(0), .outOfRange(0)), (Signal(-3), .outOfRange(-3)), (Signal(65), .outOfRange(65)),
        (Signal(32), .reservedByLibc(Signal(32))), (Signal(33), .reservedByLibc(Signal(33))),
    ]
    for (signal, error) in refused {
        expect(error, "start with \(signal.rawValue)") { () throws(SignalError) in
            try engine.start(watching: [.sigusr1, signal])
        }
        expect(error, "subscribe to \(signal.rawValue)") { () throws(SignalError) in
            _ = try engine.events(for: [.sigusr1, signal])
        }
    }
    expect(.invalidConfiguration("ringCapacity must be a power of two in 2...65536, not 1000"), "ring 1000") {
        () throws(SignalError) in
        try engine.start(watching: [.sigusr1], configuration: .init(ringCapacity: 1000))
    }
    check(!engine.isRunning, "not running after refusals")
    check(must { try SignalDispositions.current(.sigusr1) } == .default, "SIGUSR1 disposition untouched")
    check(!mainThreadBlocks(.sigusr1), "SIGUSR1 not blocked")
    check(threadCount() == threadsBefore, "no thread created")
    check(engine.subscriptionCount == 0, "no subscription left by refusals")
    expect(.notRunning, "stop while stopped") { () throws(SignalError) in try engine.stop() }
    expect(.notRunning, "unwatch while stopped") { () throws(SignalError) in try engine.unwatch([.sigusr2]) }

    must { try engine.start(watching: [.sigusr1]) }
    let threadsRunning = threadCount()
    expect(.alreadyRunning, "second start") { () throws(SignalError) in try engine.start(watching: [.sigusr2]) }
    check(threadCount() == threadsRunning, "second start made no thread")
    guard let internalSignal = Signal.engineInternal else { fail("no internal signal while running") }
    let refusedRunning = refused + [(internalSignal, SignalError.engineInternal(internalSignal))]
    for (signal, error) in refusedRunning {
        expect(error, "watch \(signal.rawValue)") { () throws(SignalError) in try engine.watch([.sigusr2, signal]) }
    }
    check(engine.watchedSignals == [.sigusr1], "watched set unchanged")
    check(must { try SignalDispositions.current(.sigusr2) } == .default, "SIGUSR2 disposition untouched")
    expect(.watchedByEngine(.sigusr1), "ignore a watched signal") { () throws(SignalError) in
        try SignalDispositions.ignore(.sigusr1)
    }
    expect(.uncatchable(.sigkill), "ignore SIGKILL") { () throws(SignalError) in try SignalDispositions.ignore(.sigkill) }
    expect(.outOfRange(99), "send 99") { () throws(SignalError) in try SignalSender.raise(Signal(99)) }
    check(csignal_is_engine_handler(SIGUSR1), "engine handler still installed")
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    expect(.stillClaimed(.sigusr1), "unwatch a claimed signal") { () throws(SignalError) in try engine.unwatch([.sigusr1]) }
    subscription.cancel()
    must { try engine.unwatch([.sigusr1]) }
    check(!csignal_is_engine_handler(SIGUSR1), "unwatch after the last subscription")
    must { try engine.stop() }
    say("done")

// A ring of 16 records drained by hand takes 100 queued signals: the wait thread stops taking them while the
// ring has no room, so they wait in the kernel; every drain makes room; nothing is dropped, all arrive in order.
case "overflow":
    let n = argument(1, default: 100)
    let rt = Signal.realtimeMinimum
    must { try engine.start(watching: [rt], configuration: .init(ringCapacity: 16, batchLimit: 4, delivery: .manual)) }
    say("READY pid=\(getpid())")
    let poller = must { try engine.poller(for: rt) }
    waitUntil("the first deliveries", timeout: .seconds(30)) { poller.total >= 12 }
    var records: [SignalEvent] = []
    let deadline = ContinuousClock.now + .seconds(30)
    while records.count < n, ContinuousClock.now < deadline {
        let batch = engine.drain()
        records += batch
        if batch.isEmpty {
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
        }
    }
    let counts = engine.counts(for: rt)
    let inOrder = records.map(\.value) == (1...CInt(n)).map { $0 }
    say("records=\(records.count) in_order=\(inOrder ? 1 : 0)")
    say("delivered=\(counts.delivered) dropped=\(counts.droppedRecords) total_dropped=\(engine.droppedRecords)")
    must { try engine.stop() }

// The wait thread sleeps without waking up while nothing arrives.
case "idle":
    let seconds = argument(1, default: 3)
    must { try engine.start(watching: [.sigusr1, .sigterm, .sighup]) }
    guard let tid = engine.waitThreadID else { fail("no wait thread") }
    func switches() -> UInt64 {
        let reports = must { try engine.auditThreads() }
        guard let report = reports.first(where: { $0.threadID == tid }) else {
            fail("status of \(tid)")
        }
        return report.voluntaryContextSwitches
    }
    // One delivery first, so that the thread is in its steady state (asleep in sigwaitinfo). Polled, not taken
    // with next(timeout:): a blocking caller would borrow the wait role and hold a lease, which is not idle.
    must { try SignalSender.raise(.sigusr1) }
    waitUntil("the warm-up delivery") { engine.counts(for: .sigusr1).delivered == 1 }
    waitUntil("the wait thread to go back to sleep") { waitsInKernel(tid) }
    let before = switches()
    var ts = timespec(tv_sec: seconds, tv_nsec: 0)
    nanosleep(&ts, nil)  // the measurement window itself, not a synchronisation
    let after = switches()
    say("wait_thread=\(tid) seconds=\(seconds) wakeups=\(after - before)")
    must { try engine.stop() }

// Several async subscribers each see every event of their set; cancelling ends a sequence and nothing leaks.
case "subscribers":
    must { try engine.start(watching: [.sigusr1, .sigusr2]) }
    runAsync {
        let a = must { try engine.events(for: [.sigusr1]) }
        let b = must { try engine.events(for: [.sigusr1, .sigusr2]) }
        let c = must { try engine.events(for: [.sigusr2]) }
        say("subscriptions=\(engine.subscriptionCount)")
        async let seenA: [CInt] = a.prefix(3).map { $0.signal.rawValue }.reduce(into: []) { $0.append($1) }
        async let seenB: [CInt] = b.prefix(4).map { $0.signal.rawValue }.reduce(into: []) { $0.append($1) }
        async let seenC: [CInt] = c.prefix(1).map { $0.signal.rawValue }.reduce(into: []) { $0.append($1) }
        let gate = must { try engine.subscription(for: [.sigusr1, .sigusr2]) }
        // One at a time: standard signals coalesce, so each send waits until the previous one was recorded.
        for signal in [Signal.sigusr1, .sigusr1, .sigusr2, .sigusr1] {
            must { try SignalSender.raise(signal) }
            if gate.next(timeout: .seconds(10)) == nil { fail("\(signal) not recorded") }
        }
        gate.cancel()
        say("a=\(await seenA) b=\(await seenB) c=\(await seenC)")
        // a, b and c are finished or dropped here; a new one is cancelled through its task.
        let d = must { try engine.events(for: [.sigusr1]) }
        let task = Task { for await _ in d {} ; return "ended" }
        task.cancel()
        say("cancelled_task=\(await task.value)")
    }
    waitUntil("subscriptions to be released") { engine.subscriptionCount == 0 }
    say("subscriptions_after=\(engine.subscriptionCount)")
    must { try engine.stop() }

// Blocking wait: a timeout returns nil after the timeout; a delivery returns the event.
case "blocking-wait":
    must { try engine.start(watching: [.sigusr1]) }
    let clock = ContinuousClock()
    let started = clock.now
    let none = must { try engine.wait(for: [.sigusr1], timeout: .milliseconds(300)) }
    let waited = clock.now - started
    say("timeout_result=\(describe(none)) waited_ms=\(milliseconds(waited))")
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    let sender = HelperThread { _ in _ = try? SignalSender.raise(.sigusr1) }
    let event = subscription.next(timeout: .seconds(10))
    sender.join()
    say("event \(describe(event))")
    must { try engine.stop() }

// Watching more signals on a running engine, and unwatching one, which restores it; unwatch is refused while a
// subscription still receives the signal.
case "watch-running":
    must { try SignalDispositions.ignore(.sigusr2) }
    must { try engine.start(watching: [.sigusr1]) }
    must { try engine.watch([.sigusr2, .sighup]) }
    check(engine.watchedSignals == [.sigusr1, .sigusr2, .sighup], "watched set grew")
    let usr2 = must { try engine.subscription(for: [.sigusr2]) }
    let hup = must { try engine.subscription(for: [.sighup]) }
    must { try SignalSender.raise(.sigusr2) }
    check(usr2.next(timeout: .seconds(10))?.signal == .sigusr2, "SIGUSR2 received after watch")
    do {
        try engine.unwatch([.sigusr2])
        check(false, "unwatch refused while subscribed")
    } catch {
        check(error == .stillClaimed(.sigusr2), "unwatch refused while subscribed", detail: "\(error)")
    }
    usr2.cancel()
    check(engine.watchedSignals.contains(.sigusr2), "still watched after the last subscription ended")
    must { try engine.unwatch([.sigusr2]) }
    check(engine.watchedSignals == [.sigusr1, .sighup], "watched set shrank")
    check(must { try SignalDispositions.current(.sigusr2) } == .ignore, "SIGUSR2 back to SIG_IGN")
    check(!mainThreadBlocks(.sigusr2), "SIGUSR2 unblocked again")
    check(mainThreadBlocks(.sighup) && mainThreadBlocks(.sigusr1), "others still blocked")
    must { try SignalSender.raise(.sigusr2) }  // ignored now
    must { try SignalSender.raise(.sighup) }
    check(hup.next(timeout: .seconds(10))?.signal == .sighup, "SIGHUP still received")
    check(engine.counts(for: .sigusr2).delivered == 1, "SIGUSR2 counted once")
    must { try engine.stop() }
    say("done")

// The poll path: counts new deliveries since the last look.
case "poll":
    must { try engine.start(watching: [.sigusr1]) }
    var poller = must { try engine.poller(for: .sigusr1) }
    check(poller.poll() == 0 && !poller.hasNew, "nothing before sending")
    for i in 1...5 {
        must { try SignalSender.raise(.sigusr1) }
        waitUntil("delivery \(i)") { poller.total == UInt64(i) }
    }
    check(poller.hasNew, "hasNew after sending")
    let first = poller.poll()
    let second = poller.poll()
    say("first_poll=\(first) second_poll=\(second)")
    must { try engine.stop() }

// A task that prefers the engine's executor is resumed on the wait thread itself.
case "executor":
    must { try engine.start(watching: [.sigusr1]) }
    guard let waiter = engine.waitThreadID else { fail("no wait thread") }
    runAsync {
        await withTaskExecutorPreference(engine.executor) {
            let events = must { try engine.events(for: [.sigusr1]) }
            var threads: [pid_t] = []
            var iterator = events.makeAsyncIterator()
            for _ in 0..<3 {
                let sender = HelperThread { _ in _ = try? SignalSender.raise(.sigusr1) }
                guard await iterator.next() != nil else { fail("sequence ended early") }
                threads.append(csignal_gettid())
                sender.join()
            }
            say("resumed_on=\(threads.map(String.init).joined(separator: ",")) waiter=\(waiter)")
            // Setup from the wait thread would wait for itself: refused.
            do {
                try engine.stop()
                say("stop_on_wait_thread=accepted")
            } catch {
                say("stop_on_wait_thread=\(error as? SignalError == .calledOnWaitThread ? "refused" : "\(error)")")
            }
        }
    }
    must { try engine.stop() }
    // After stop, a task with the preference still runs (on the global executor).
    runAsync {
        await withTaskExecutorPreference(engine.executor) {
            await Task.yield()
            say("after_stop_ran=1")
        }
    }

// A thread blocked in next(timeout:) borrows the wait role; setup, other subscribers, handler-route deliveries
// and stop all keep working around it.
case "borrow":
    must { try engine.start(watching: [.sigusr1, .sigusr2]) }
    let everything = must { try engine.subscription(for: [.sigusr1, .sigusr2, .sighup]) }
    // The main thread never blocks in next() here (it would borrow the role itself): it polls with a deadline.
    func nextOnMain() -> SignalEvent? {
        var event: SignalEvent? = nil
        waitUntil("an event for the main thread") {
            event = everything.drain().first
            return event != nil
        }
        return event
    }
    let aSubscription = must { try engine.subscription(for: [.sigusr1]) }
    nonisolated(unsafe) var aEvents: [SignalEvent] = []
    let aTaken = DispatchSemaphore(value: 0)  // one signal per event A took (counting without taking from A)
    let aDone = DispatchSemaphore(value: 0)
    let aWaiting = DispatchSemaphore(value: 0)
    let a = HelperThread { _ in
        aWaiting.signal()
        while let event = aSubscription.next(timeout: .seconds(20)) {
            aEvents.append(event)
            aTaken.signal()
        }
        aDone.signal()
    }
    if aWaiting.wait(timeout: .now() + 10) == .timedOut { fail("A did not start") }
    waitUntil("A to hold the wait role") { waitsInKernel(a.tid) }
    // 1. Deliveries while A waits are recorded by A itself, which hands them to every subscription.
    for i in 1...3 {
        must { try SignalSender.raise(.sigusr1) }
        if nextOnMain()?.signal != .sigusr1 { fail("delivery \(i) not handed over") }
    }
    // 2. Setup while A borrows: watch a new signal.
    must { try engine.watch([.sighup]) }
    must { try SignalSender.raise(.sighup) }
    check(nextOnMain()?.signal == .sighup, "SIGHUP received after watch during a borrow")
    // 3. A handler-route delivery while A borrows: the poke reaches whoever holds the role.
    let unblocked = HelperThread.unblocking(SIGUSR2)
    must { try SignalSender.send(.sigusr2, toThread: unblocked.tid) }
    let viaHandler = nextOnMain()
    check(viaHandler?.signal == .sigusr2 && viaHandler?.route == .handler, "handler-route delivery handed over")
    unblocked.finish.signal()
    unblocked.join()
    // 4. More deliveries for A after the setup.
    must { try SignalSender.raise(.sigusr1) }
    check(nextOnMain()?.signal == .sigusr1, "delivery after setup handed over")
    // Not aSubscription.drain(): that would take A's 4th event away from A if it had not picked it up yet.
    for i in 1...4 where aTaken.wait(timeout: .now() + 10) == .timedOut { fail("A did not take event \(i)") }
    // 5. Stop while A waits: A wakes with nil at once.
    let clock = ContinuousClock()
    let stopStarted = clock.now
    must { try engine.stop() }
    if aDone.wait(timeout: .now() + 10) == .timedOut { fail("A still blocked after stop") }
    let stopTook = clock.now - stopStarted
    a.join()
    say("a_count=\(aEvents.count) a_tid=\(a.tid) a_event_tids=\(aEvents.map { String($0.threadID) }.joined(separator: ","))")
    say("a_sequences=\(aEvents.map { String($0.sequence) }.joined(separator: ","))")
    say("stop_ms=\(milliseconds(stopTook))")
    say("everything_dropped=\(everything.droppedEvents)")

// The lazy lease: a thread looping on next() keeps the wait role between calls, so the wait thread does not
// wake per signal; when the thread stops calling, the lease runs out and the wait thread takes deliveries again.
case "lease":
    must { try engine.start(watching: [.sigusr1, .sigusr2]) }
    guard let waiterTID = engine.waitThreadID else { fail("no wait thread") }
    func waiterSwitches() -> UInt64 {
        let reports = must { try engine.auditThreads() }
        guard let report = reports.first(where: { $0.threadID == waiterTID }) else {
            fail("status of \(waiterTID)")
        }
        return report.voluntaryContextSwitches
    }
    let rounds = 20
    let subscription = must { try engine.subscription(for: [.sigusr1]) }
    let seen = Atomic<Int>(0)
    let consumer = HelperThread { _ in
        for _ in 0..<rounds {
            guard subscription.next(timeout: .seconds(20)) != nil else { return }
            seen.add(1, ordering: .releasing)
        }
    }
    // First round: the consumer borrows the role (the wait thread wakes to lend it); then count.
    must { try SignalSender.raise(.sigusr1) }
    waitUntil("round 1") { seen.load(ordering: .acquiring) == 1 }
    let before = waiterSwitches()
    for round in 2...rounds {
        waitUntil("the consumer to wait again") { waitsInKernel(consumer.tid) }
        must { try SignalSender.raise(.sigusr1) }
        waitUntil("round \(round)") { seen.load(ordering: .acquiring) == round }
    }
    let after = waiterSwitches()
    consumer.join()
    say("rounds=\(rounds) waiter_wakeups_during_loop=\(after - before)")
    // The consumer is gone with the lease: the wait thread must take deliveries again.
    let others = must { try engine.subscription(for: [.sigusr2]) }
    let clock = ContinuousClock()
    let sent = clock.now
    must { try SignalSender.raise(.sigusr2) }
    var event: SignalEvent? = nil
    waitUntil("SIGUSR2 after the lease") {
        event = others.drain().first
        return event != nil
    }
    let took = clock.now - sent
    say("after_lease_signal=\(event?.signal.rawValue ?? 0) after_lease_ms=\(milliseconds(took)) after_lease_tid=\(event?.threadID ?? 0) waiter=\(waiterTID)")
    must { try engine.stop() }

// A job on the wait thread traps: the process must die the ordinary way, with the Swift runtime's backtrace of
// the crashed thread (the wait thread leaves SIGILL, SIGTRAP, SIGSEGV and the other fault signals unblocked).
case "executor-crash":
    must { try engine.start(watching: [.sigusr1]) }
    say("waiter=\(engine.waitThreadID ?? 0)")
    let crashing = Task(executorPreference: engine.executor) {
        let values: [Int] = []
        say("crashing_on=\(csignal_gettid())")
        return values[Int(getpid() % 2) + 5]  // out of bounds: a trap
    }
    _ = crashing
    // The backtracer interrupts this thread to suspend it (EINTR): sleep the rest, or this thread could exit
    // before the crashed one re-raises its signal.
    var left = timespec(tv_sec: 50, tv_nsec: 0)  // within the test's 60 s; the backtracer may take tens of seconds
    var rest = timespec()
    while nanosleep(&left, &rest) != 0, errno == EINTR { left = rest }
    fail("the job did not crash")

default:
    fail("unknown scenario \(scenario)")
}
exit(0)
