import CSignalShim
import CSignalVerifySupport
import ChildProcessTesting
import Dispatch
import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif


/// Threads created by C code while start spreads the mask end up blocked.
func scenarioThreadStorm(maxThreads: Int) {
    let engine = SignalEngine.shared
    if csv_storm_start(CInt(maxThreads)) != 0 { fail("storm start") }
    // Let creation get going, so that start runs while threads keep appearing.
    waitUntil("the first storm threads") { csv_count_threads() > 12 }
    let before = csv_count_threads()
    let started = clock.now
    must { try engine.start(watching: [.sigusr1, .sigterm, .realtime(0)]) }
    let startTime = clock.now - started
    let after = csv_count_threads()
    let created = csv_storm_stop()
    let spread = engine.lastMaskSpread
    say("storm created=\(created) threads_at_start=\(before) threads_after_start=\(after) start_ms=\(milliseconds(startTime)) passes=\(spread.passes) signalled=\(spread.signalled) unreachable=\(spread.unreachable) competing=\(spread.competing)")
    check(after > before, "threads were being created while start spread the mask")
    check(auditAllBlocked("storm"), "every thread (including the ones created during start) blocks the watched signals")
    // With every thread blocked, process-directed signals all reach the wait thread.
    let subscription = must { try engine.subscription(for: [.realtime(0)]) }
    for i in 1...50 { must { try SignalSender.queue(.realtime(0), to: getpid(), value: CInt(i)) } }
    var routes: [SignalEvent.Route] = []
    for _ in 1...50 {
        guard let e = subscription.next(timeout: .seconds(10)) else { fail("storm: RT signal missing") }
        routes.append(e.route)
    }
    check(routes.allSatisfy { $0 == .waitThread }, "all 50 RT signals went through the wait thread")
    csv_storm_release()
    must { try engine.stop() }
}

/// Stop while a flood is in flight: every queued RT signal is recorded by the engine or meets the restored
/// disposition (a counting handler); recorded + counted == sent (cf. Go's TestAtomicStop). The sender runs
/// until every round is done, so every stop happens mid-flood; `minimum` is the least it sends in all.
func scenarioStopFlood(minimum: Int, rounds: Int) {
    let engine = SignalEngine.shared
    let rt = Signal.realtime(1)
    if csv_install_counting_handler(rt.rawValue) != 0 { fail("install counting handler") }
    // Paced (64 sends, then a 100 µs sleep): still a flood, but one the receiver can drain, so the thread that
    // has the signal unblocked after a stop is not kept in handlers forever (see csv_flood_start_paced).
    guard let flood = csv_flood_start_paced(getpid(), rt.rawValue, UInt64(Int32.max), 120, 64, 100_000)
    else { fail("flood start") }
    waitUntil("the flood to begin") { csv_flood_sent(flood) > 0 }
    var stoppedWhileSending = 0
    let started = clock.now
    for round in 1...rounds {
        let sentBefore = csv_flood_sent(flood)
        must { try engine.start(watching: [rt]) }
        let base = csignal_delivered(rt.rawValue)
        // Stop as soon as this round recorded something, and the sender sent during the round.
        waitUntil("round \(round) deliveries", timeout: .seconds(60)) {
            csignal_delivered(rt.rawValue) > base && csv_flood_sent(flood) > sentBefore
        }
        must { try engine.stop() }
        // The sender runs until csv_flood_stop below: it is sending throughout every stop.
        if csv_flood_sent(flood) < UInt64(Int32.max) { stoppedWhileSending += 1 }
        check(csv_is_counting_handler(rt.rawValue), "round \(round): counting handler restored")
    }
    waitUntil("the flood to reach \(minimum)", timeout: .seconds(60)) { csv_flood_sent(flood) >= UInt64(minimum) }
    csv_flood_stop(flood)
    var eagain: UInt64 = 0
    let sent = csv_flood_join(flood, &eagain)
    // Everything sent is in the kernel's queue or already delivered; the queue drains to the counting handler.
    waitUntil("recorded + counted to reach \(sent)", timeout: .seconds(30)) {
        csignal_delivered(rt.rawValue) + csv_counting_hits(rt.rawValue) >= sent
    }
    let recorded = csignal_delivered(rt.rawValue)
    let counted = csv_counting_hits(rt.rawValue)
    say("stop_flood sent=\(sent) recorded=\(recorded) counted=\(counted) eagain=\(eagain) rounds=\(rounds) stopped_mid_flood=\(stoppedWhileSending) ms=\(milliseconds(clock.now - started))")
    check(sent >= UInt64(minimum), "the sender queued at least the minimum", detail: "\(sent) of \(minimum)")
    check(recorded + counted == sent, "recorded + counted by the restored handler == sent")
    check(stoppedWhileSending == rounds, "every stop happened while the flood was in flight")
}

/// One thread raises continuously while another watches and unwatches `iterations` times: no crash, and
/// received <= sent (equality for the queued RT signal once everything drained). cf. CPython's
/// test_stress_modifying_handlers.
func scenarioWatchChurn(iterations: Int, pauseMicroseconds: Int) {
    let engine = SignalEngine.shared
    let rt = Signal.realtime(2)
    for s in [Signal.sigusr2, rt] where csv_install_counting_handler(s.rawValue) != 0 { fail("install counting handler") }
    must { try engine.start(watching: [.sigusr1]) }
    let stop = Atomic<Bool>(false)
    let sentStandard = Atomic<UInt64>(0)
    let sentRealtime = Atomic<UInt64>(0)
    let me = getpid()
    let started = clock.now
    // The unpaced flood is bounded by time on the sender's side too: while it keeps the queue full, a thread
    // that has the signals unblocked (the main thread after each unwatch) can spend most of its time in
    // handlers and reach its own deadline check late.
    let deadline = started + (pauseMicroseconds > 0 ? .seconds(240) : .seconds(20))
    let raiser = PlainThread {
        var i: CInt = 0
        while !stop.load(ordering: .relaxed) && clock.now < deadline {
            if kill(me, SIGUSR2) == 0 { sentStandard.add(1, ordering: .relaxed) }
            i &+= 1
            var value = sigval()
            value.sival_int = i
            if sigqueue(me, rt.rawValue, value) == 0 { sentRealtime.add(1, ordering: .relaxed) }
            if pauseMicroseconds > 0 {
                // Pacing, not synchronisation: without it the sender and the wait thread take both cores of a
                // small CI machine and the watch/unwatch loop crawls.
                var ts = timespec(tv_sec: 0, tv_nsec: pauseMicroseconds * 1000)
                nanosleep(&ts, nil)
            }
        }
    }
    var done = 0
    var watchTimes: [Duration] = []
    var unwatchTimes: [Duration] = []
    watchTimes.reserveCapacity(iterations)
    unwatchTimes.reserveCapacity(iterations)
    while done < iterations && clock.now < deadline {
        let t0 = clock.now
        must { try engine.watch([.sigusr2, rt]) }
        let t1 = clock.now
        must { try engine.unwatch([.sigusr2, rt]) }
        unwatchTimes.append(clock.now - t1)
        watchTimes.append(t1 - t0)
        done += 1
    }
    // What a watch and an unwatch cost under the flood: medians in microseconds, the slowest in milliseconds.
    func microseconds(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000 }
    func median(_ times: [Duration]) -> Int64 { times.isEmpty ? 0 : microseconds(times.sorted()[times.count / 2]) }
    say("watch_us_p50=\(median(watchTimes)) watch_ms_max=\(milliseconds(watchTimes.max() ?? .zero)) unwatch_us_p50=\(median(unwatchTimes)) unwatch_ms_max=\(milliseconds(unwatchTimes.max() ?? .zero))")
    stop.store(true, ordering: .relaxed)
    raiser.join()
    let elapsed = clock.now - started
    let sentRT = sentRealtime.load(ordering: .relaxed)
    waitUntil("RT signals to drain", timeout: .seconds(30)) {
        csignal_delivered(rt.rawValue) + csv_counting_hits(rt.rawValue) >= sentRT
    }
    let standardReceived = csignal_delivered(SIGUSR2) + csv_counting_hits(SIGUSR2)
    let rtReceived = csignal_delivered(rt.rawValue) + csv_counting_hits(rt.rawValue)
    say("churn iterations=\(done) pause_us=\(pauseMicroseconds) ms=\(milliseconds(elapsed)) sigusr2_sent=\(sentStandard.load(ordering: .relaxed)) sigusr2_received=\(standardReceived) sigusr2_recorded=\(csignal_delivered(SIGUSR2)) rt_sent=\(sentRT) rt_received=\(rtReceived) rt_recorded=\(csignal_delivered(rt.rawValue))")
    if pauseMicroseconds > 0 {
        check(done == iterations, "every watch/unwatch pair done within the time bound", detail: "\(done) of \(iterations)")
    } else {
        // Under an unpaced flood the number of pairs in 20 s depends on the machine; what must hold is below.
        check(done > 0, "watch/unwatch pairs done within 20 s of unpaced flood", detail: "\(done) of \(iterations)")
    }
    check(standardReceived <= sentStandard.load(ordering: .relaxed) && standardReceived > 0, "SIGUSR2: 0 < received <= sent")
    check(rtReceived == sentRT, "RT: received == sent (queued signals are never lost)")
    check(csignal_delivered(SIGUSR2) > 0 && csv_counting_hits(SIGUSR2) > 0, "both the engine and the restored handler saw SIGUSR2")
    must { try engine.stop() }
}

/// `cycles` start/stop cycles: no thread or file descriptor leaks.
func scenarioCycles(cycles: Int) {
    let engine = SignalEngine.shared
    // One warm-up cycle: the runtime may create things lazily the first time.
    must { try engine.start(watching: [.sigusr1, .sigterm]) }
    must { try engine.stop() }
    let threadsBefore = csv_count_threads()
    let fdsBefore = csv_count_fds()
    let started = clock.now
    for i in 1...cycles {
        must { try engine.start(watching: [.sigusr1, .sigterm]) }
        if i % 1000 == 0 {
            let s = must { try engine.subscription(for: [.sigusr1]) }
            must { try SignalSender.raise(.sigusr1) }
            if s.next(timeout: .seconds(10)) == nil { fail("cycle \(i): SIGUSR1 not seen") }
        }
        must { try engine.stop() }
    }
    let elapsed = clock.now - started
    let threadsAfter = csv_count_threads()
    let fdsAfter = csv_count_fds()
    say("cycles=\(cycles) ms=\(milliseconds(elapsed)) us_per_cycle=\(milliseconds(elapsed) * 1000 / Int64(cycles)) threads_before=\(threadsBefore) threads_after=\(threadsAfter) fds_before=\(fdsBefore) fds_after=\(fdsAfter)")
    check(threadsAfter == threadsBefore, "no thread leaked over the cycles", detail: "\(cycles) cycles")
    check(fdsAfter == fdsBefore, "no file descriptor leaked over the cycles", detail: "\(cycles) cycles")
    check(!engine.isRunning && engine.waitThreadID == nil, "stopped at the end")
}

/// A full record ring: every delivery is counted, drops are counted exactly, and no producer ever waits
/// (the wait thread and handlers on other threads keep recording while nothing drains).
func scenarioRingFull(processSignals: Int, threadSignals: Int) {
    let engine = SignalEngine.shared
    let rt = Signal.realtime(3)
    let capacity = 64
    must { try engine.start(watching: [rt], configuration: .init(ringCapacity: capacity, delivery: .manual)) }
    // A thread with the signal unblocked: thread-directed sends run the fallback handler there.
    let ready = DispatchSemaphore(value: 0)
    let finish = DispatchSemaphore(value: 0)
    let handlerTID = Atomic<pid_t>(0)
    let receiver = PlainThread {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, rt.rawValue)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        handlerTID.store(csignal_gettid(), ordering: .releasing)
        ready.signal()
        _ = finish.wait(timeout: .now() + 60)
    }
    if ready.wait(timeout: .now() + 10) == .timedOut { fail("receiver thread") }
    let started = clock.now
    guard let flood = csv_flood_start(getpid(), rt.rawValue, UInt64(processSignals), 60) else { fail("flood") }
    var threadSent = 0
    var threadEagain = 0
    let tid = handlerTID.load(ordering: .acquiring)
    let deadline = clock.now + .seconds(60)
    while threadSent < threadSignals && clock.now < deadline {
        let err = csv_queue_to_thread(tid, rt.rawValue, CInt(100_000 + threadSent))
        if err == 0 { threadSent += 1 } else if err == EAGAIN { threadEagain += 1; sched_yield() } else { fail("queue to thread: \(err)") }
    }
    var eagain: UInt64 = 0
    let processSent = csv_flood_join(flood, &eagain)
    let total = processSent + UInt64(threadSent)
    waitUntil("all \(total) deliveries to be counted", timeout: .seconds(60)) { csignal_delivered(rt.rawValue) >= total }
    let elapsed = clock.now - started
    let c = engine.counts(for: rt)
    say("ring_full capacity=\(capacity) sent=\(total) delivered=\(c.delivered) via_waiter=\(c.viaWaitThread) via_handler=\(c.viaHandler) dropped=\(c.droppedRecords) eagain=\(eagain + UInt64(threadEagain)) ms=\(milliseconds(elapsed))")
    check(c.delivered == total, "delivered == sent with the ring full", detail: "\(c.delivered) of \(total)")
    check(c.viaWaitThread + c.viaHandler == c.delivered, "routes add up")
    check(c.viaHandler >= UInt64(threadSent) && c.viaHandler > 0, "handler-route producers kept recording while full")
    check(c.droppedRecords == c.delivered - UInt64(capacity), "dropped == delivered - capacity")
    let records = engine.drain()
    let sequences = records.map { $0.sequence }
    say("ring_full records=\(records.count) first_sequence=\(sequences.first ?? 0) last_sequence=\(sequences.last ?? 0)")
    check(records.count == capacity && sequences == (1...UInt64(capacity)).map { $0 }, "the ring holds the first records, in order",
          detail: "capacity \(capacity)")
    must { try SignalSender.queue(rt, to: getpid(), value: 7) }
    waitUntil("one more delivery") { csignal_delivered(rt.rawValue) == total + 1 }
    let again = engine.drain()
    check(again.count == 1 && again.first?.value == 7, "after a drain the ring records again")
    finish.signal()
    receiver.join()
    must { try engine.stop() }
}

/// A sender that fills the kernel's RT queue (RLIMIT_SIGPENDING, lowered here) sees EAGAIN; every signal that
/// was queued is delivered, in order.
func scenarioQueueFull(limit: Int) {
    let engine = SignalEngine.shared
    let rt = Signal.realtime(4)
    if csv_set_sigpending_limit(UInt64(limit)) != 0 { fail("setrlimit(RLIMIT_SIGPENDING)") }
    must { try engine.start(watching: [rt]) }
    let subscription = must { try engine.subscription(for: [rt]) }
    // The target thread blocks rt (created after start, it inherits the engine's mask), so thread-directed
    // signals pile up in its own queue: the wait thread cannot take them.
    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let targetTID = Atomic<pid_t>(0)
    let target = PlainThread {
        targetTID.store(csignal_gettid(), ordering: .releasing)
        ready.signal()
        _ = go.wait(timeout: .now() + 60)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, rt.rawValue)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)  // now the fallback handler takes every queued one
        _ = go.wait(timeout: .now() + 60)
    }
    if ready.wait(timeout: .now() + 10) == .timedOut { fail("target thread") }
    let tid = targetTID.load(ordering: .acquiring)
    // RLIMIT_SIGPENDING is checked against the count of *every* pending queued signal of this user, so other
    // processes (parallel tests, say) can hold part of it, or for a while all of it. Fill until EAGAIN after
    // at least one of ours was queued; while nothing of ours fits, wait for the others to drain (bounded).
    var queued = 0
    var firstError: CInt = 0
    let fillDeadline = clock.now + .seconds(20)
    while queued < limit * 4 {
        let err = csv_queue_to_thread(tid, rt.rawValue, CInt(queued + 1))
        if err == 0 {
            queued += 1
            continue
        }
        firstError = err
        if err == EAGAIN && queued == 0 && clock.now < fillDeadline {
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
            continue
        }
        break
    }
    say("queue_full limit=\(limit) queued=\(queued) error=\(firstError)")
    check(firstError == EAGAIN, "the sender saw EAGAIN once the queue was full")
    check(queued > 0 && queued <= limit, "no more than RLIMIT_SIGPENDING were queued")
    // The engine's own wake-up is a real-time signal too, charged to the same full queue: watch must wait for
    // room rather than fail. A thread makes room after 100 ms (the target unblocks and takes its signals).
    let freer = PlainThread {
        var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        nanosleep(&pause, nil)
        go.signal()
    }
    let watchStarted = clock.now
    let watchResult = Result { () throws(SignalError) in try engine.watch([.realtime(6)]) }
    let watchWaited = clock.now - watchStarted
    freer.join()
    say("queue_full watch_result=\(watchResult) watch_waited_ms=\(milliseconds(watchWaited))")
    check((try? watchResult.get()) != nil, "watch on a full queue succeeded (no EAGAIN)")
    // When our own signals alone filled the queue (nobody else's was pending), nothing could make room before
    // the freer did: watch must have waited for it. Otherwise another process's signal may have left first.
    if queued == limit {
        check(watchWaited >= .milliseconds(80), "watch waited for room while only our signals filled the queue")
    }
    var values: [CInt] = []
    while values.count < queued {
        guard let e = subscription.next(timeout: .seconds(20)) else { break }
        values.append(e.value)
    }
    let c = engine.counts(for: rt)
    say("queue_full received=\(values.count) delivered=\(c.delivered) via_handler=\(c.viaHandler) dropped=\(c.droppedRecords)")
    check(values == (1...CInt(max(queued, 1))).map { $0 } && c.delivered == UInt64(queued),
          "every queued signal was delivered once, in order")
    // The queue has room again.
    // (Retrying EAGAIN for a while: other processes of this user may be holding the shared count.)
    var again = csv_queue_to_thread(tid, rt.rawValue, CInt(queued + 1))
    let againDeadline = clock.now + .seconds(20)
    while again == EAGAIN && clock.now < againDeadline {
        var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        nanosleep(&pause, nil)
        again = csv_queue_to_thread(tid, rt.rawValue, CInt(queued + 1))
    }
    check(again == 0, "queueing works again after the drain")
    check(subscription.next(timeout: .seconds(10))?.value == CInt(queued + 1), "and that one arrives too")
    go.signal()
    target.join()
    must { try engine.stop() }
}

/// Many consumers at once on the wait-thread route only: three blocking subscriptions, an async sequence, a
/// thread that keeps subscribing and cancelling, and a poller, while a sender queues `count` RT signals. Every
/// thread is created after start, so each inherits the blocked mask and no handler ever runs: this is the
/// scenario ThreadSanitizer can judge completely (see SAFETY.md), and it checks every handover is exact.
func scenarioSubscriberStress(count: Int) {
    let engine = SignalEngine.shared
    let rt = Signal.realtime(5)
    must { try engine.start(watching: [rt]) }
    let subscriptions = (0..<3).map { _ in must { try engine.subscription(for: [rt]) } }
    let inOrder = Atomic<Int>(0)
    let consumers = subscriptions.map { subscription in
        PlainThread {
            var expected: CInt = 1
            while expected <= CInt(count) {
                guard let event = subscription.next(timeout: .seconds(30)) else { return }
                if event.value != expected { return }
                expected += 1
            }
            inOrder.add(1, ordering: .relaxed)
        }
    }
    let stop = Atomic<Bool>(false)
    let churned = Atomic<Int>(0)
    let churn = PlainThread {
        while !stop.load(ordering: .relaxed) {
            let s = must { try engine.subscription(for: [rt], buffering: .bufferingNewest(8)) }
            _ = s.next(timeout: .milliseconds(1))
            s.cancel()
            churned.add(1, ordering: .relaxed)
        }
    }
    let polled = Atomic<UInt64>(0)
    // Made here, before the flood starts: a poller counts from the moment it is made, and the worker thread may
    // start late on a loaded machine.
    let startingPoller = must { try engine.poller(for: rt) }
    let poller = PlainThread {
        var p = startingPoller
        var total: UInt64 = 0
        let deadline = clock.now + .seconds(60)
        while total < UInt64(count) && clock.now < deadline { total += p.poll() }
        polled.store(total, ordering: .relaxed)
    }
    let asyncDone = DispatchSemaphore(value: 0)
    let asyncSeen = Atomic<Int>(0)
    let stream = must { try engine.events(for: [rt]) }
    Task.detached {
        var n = 0
        for await _ in stream {
            n += 1
            if n == count { break }
        }
        asyncSeen.store(n, ordering: .relaxed)
        asyncDone.signal()
    }
    guard let flood = csv_flood_start(getpid(), rt.rawValue, UInt64(count), 60) else { fail("flood") }
    let sent = csv_flood_join(flood, nil)
    for c in consumers { c.join() }
    poller.join()
    if asyncDone.wait(timeout: .now() + 30) == .timedOut { fail("async consumer did not finish") }
    stop.store(true, ordering: .relaxed)
    churn.join()
    let c = engine.counts(for: rt)
    say("subscriber_stress sent=\(sent) delivered=\(c.delivered) via_handler=\(c.viaHandler) blocking_in_order=\(inOrder.load(ordering: .relaxed)) async_seen=\(asyncSeen.load(ordering: .relaxed)) polled=\(polled.load(ordering: .relaxed)) churned=\(churned.load(ordering: .relaxed))")
    check(sent == UInt64(count) && c.delivered == sent, "delivered == sent")
    check(c.viaHandler == 0, "wait-thread route only (every thread blocks the signal)")
    check(inOrder.load(ordering: .relaxed) == 3, "three blocking subscriptions saw every delivery, in order")
    check(asyncSeen.load(ordering: .relaxed) == count, "the async sequence saw every delivery")
    check(polled.load(ordering: .relaxed) == UInt64(count), "the poller counted every delivery")
    check(auditAllBlocked("stress"), "every thread blocks the watched signal")
    for s in subscriptions { s.cancel() }
    must { try engine.stop() }
}
