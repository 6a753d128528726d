#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Dispatch
import InMemoryLogging
import Logging
import Metrics
import MetricsTestKit
import SignalCore
import SignalCoreTelemetry

#if canImport(Glibc)
import Glibc
#endif

/// `telemetry`: a SignalTelemetry observer (no refresh interval: driven by deliveries alone) with a capturing
/// log handler and TestMetrics, through two engine runs:
/// 1. automatic delivery, watching SIGUSR1, SIGUSR2, SIGRTMIN: the parent sends SIGUSR1 three times and
///    queues SIGRTMIN four times; a thread that unblocked SIGUSR2 gets one SIGUSR2 (handler route) and is
///    found by the mask audit (run when the engine starts watching SIGRTMIN+1 as well). The deliveries alone
///    must bring the metrics up to date;
/// 2. after a stop, manual delivery with a ring of 2: five SIGRTMIN taken by the fallback handler on five
///    threads, three of their records dropped; no event comes, so explicit refreshes report them.
/// Then it prints what the log handler and the metrics factory captured.
func telemetryScenario() {
    let engine = SignalEngine.shared
    let logs = InMemoryLogHandler()
    let logger = Logger(label: "telemetry", factory: { _ in logs })
    let metrics = TestMetrics()
    let rt = Signal.realtime(0)
    let telemetry = SignalTelemetry(
        configuration: .init(signals: [.sigusr1, .sigusr2, rt]), logger: logger, metricsFactory: metrics)

    func deliveries(_ signal: Signal, _ route: String) -> Int64 {
        metrics.counters(label: "signalcore_deliveries_total", dimensions: [("signal", "\(signal)"), ("route", route)])
            .reduce(0) { $0 + $1.totalValue }
    }
    func latencies(_ signal: Signal) -> [Int64] {
        metrics.timers(label: "signalcore_delivery_latency", dimensions: [("signal", "\(signal)")]).flatMap(\.values)
    }

    // Before the engine runs, an observer has nothing to observe, and does not start the engine to get something.
    let early = Task { await telemetry.run() }
    var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
    nanosleep(&pause, nil)
    say("early engine_running=\(engine.isRunning ? 1 : 0) subscriptions=\(engine.subscriptionCount)")
    early.cancel()
    runAsync { await early.value }

    // Phase 1. The observer subscribes to what the engine watches: start it after the engine.
    must("start") { try engine.start(watching: [.sigusr1, .sigusr2, rt]) }
    let observer = Task { await telemetry.run() }
    // The observer's subscription must exist before the first delivery it is to time (and its first report
    // before the watched set changes).
    waitUntil("the observer's subscription") { engine.subscriptionCount >= 1 }
    must("watch") { try engine.watch([.realtime(1)]) }
    // After the watch: a change of the watched set blocks every watched signal in every thread again.
    let thread = HelperThread.unblocking(SIGUSR2)
    say("odd_thread tid=\(thread.tid)")
    telemetry.refresh()  // sees the new watched set: audits the masks
    say("READY pid=\(getpid())")
    for k in 1...3 {
        waitUntil("SIGUSR1 #\(k)") { engine.counts(for: .sigusr1).delivered >= UInt64(k) }
        say("usr1 delivered=\(k)")
    }
    waitUntil("four SIGRTMIN") { engine.counts(for: rt).delivered >= 4 }
    say("rt delivered=4")
    must("tgkill") { try SignalSender.send(.sigusr2, toThread: thread.tid) }
    waitUntil("SIGUSR2 by the handler") { engine.counts(for: .sigusr2).viaHandler >= 1 }
    // The deliveries, handed to run()'s subscription, must bring the counters up to date: no refresh of ours.
    waitUntil("counters updated by the deliveries") {
        deliveries(.sigusr1, "wait_thread") == 3 && deliveries(rt, "wait_thread") == 4
            && deliveries(.sigusr2, "handler") == 1
    }
    waitUntil("latency of eight deliveries") {
        latencies(.sigusr1).count == 3 && latencies(rt).count == 4 && latencies(.sigusr2).count == 1
    }
    thread.finish.signal()
    thread.join()
    must("stop 1") { try engine.stop() }
    telemetry.refresh()

    // Phase 2: nobody drains a manual ring of two. The wait thread leaves signals in the kernel while the ring
    // is full, but the fallback handler cannot wait: five threads that let SIGRTMIN in take one each, and the
    // records of three of them are dropped.
    must("start 2") { try engine.start(watching: [rt], configuration: .init(ringCapacity: 2, delivery: .manual)) }
    telemetry.refresh()
    let takers = (1...5).map { _ in HelperThread.unblocking(rt.rawValue) }
    for (index, taker) in takers.enumerated() {
        must("queue") { try SignalSender.queue(rt, toThread: taker.tid, value: CInt(index + 1)) }
    }
    waitUntil("five more SIGRTMIN") { engine.counts(for: rt).delivered >= 9 }
    telemetry.refresh()
    for taker in takers {
        taker.finish.signal()
        taker.join()
    }
    must("stop 2") { try engine.stop() }
    telemetry.refresh()
    observer.cancel()
    runAsync { await observer.value }

    // What was captured.
    for signal in [Signal.sigusr1, .sigusr2, rt] {
        let dropped = metrics.counters(label: "signalcore_dropped_records_total", dimensions: [("signal", "\(signal)")])
            .reduce(0) { $0 + $1.totalValue }
        let lat = latencies(signal)
        say("metric signal=\(signal.rawValue) wait_thread=\(deliveries(signal, "wait_thread")) handler=\(deliveries(signal, "handler")) dropped=\(dropped) latency_count=\(lat.count) latency_max_ns=\(lat.max() ?? -1) latency_min_ns=\(lat.min() ?? -1)")
    }
    let running = (try? metrics.expectGauge("signalcore_engine_running").values) ?? []
    say("gauge engine_running_last=\(Int(running.last ?? -1)) engine_running_max=\(Int(running.max() ?? -1))")
    for entry in logs.entries {
        let metadata = entry.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            .joined(separator: " ")
        say("log level=\(entry.level) message=\"\(entry.message)\" \(metadata)")
    }
    let counts = engine.counts(for: rt)
    say("engine rt_delivered=\(counts.delivered) rt_dropped=\(counts.droppedRecords)")
}
#endif

#if ServiceLifecycleIntegration && TelemetryIntegration
/// `telemetry-burst N with|counts|without`: a thread queues N SIGRTMIN to this process as fast as the kernel takes
/// them (retrying EAGAIN); an application subscriber (default buffering) consumes every event. With `with`, a
/// SignalTelemetry observer times every delivery too; with `counts`, one that only keeps the counters. Reports
/// the time until the application saw the last event, and what the observer counted and timed.
func telemetryBurstScenario(count: Int, mode: String) {
    let observe = mode != "without"
    let engine = SignalEngine.shared
    let rt = Signal.realtime(0)
    let metrics = TestMetrics()
    let telemetry = SignalTelemetry(
        configuration: .init(signals: [rt], measureLatency: mode == "with"),
        logger: Logger(label: "burst", factory: { _ in SwiftLogNoOpLogHandler() }), metricsFactory: metrics)
    let application = must("subscribe") { try engine.subscription(for: [rt]) }
    let observer = observe ? Task { await telemetry.run() } : nil
    waitUntil("the observer's subscription") { engine.subscriptionCount >= (observe ? 2 : 1) }
    let before = engine.counts(for: rt).delivered
    let clock = ContinuousClock()
    let start = clock.now
    let sender = HelperThread { _ in
        let pid = getpid()
        let deadline = ContinuousClock.now + .seconds(60)
        var value: CInt = 1
        while value <= CInt(count) {
            var sv = sigval()
            sv.sival_int = value
            if sigqueue(pid, rt.rawValue, sv) == 0 {
                value += 1
            } else if errno == EAGAIN, ContinuousClock.now < deadline {
                sched_yield()
            } else {
                fail("sigqueue: errno \(errno)")
            }
        }
    }
    var received = 0
    var inOrder = true
    while received < count {
        guard let event = application.next(timeout: .seconds(30)) else { fail("application saw \(received) of \(count)") }
        received += 1
        if event.value != CInt(received) { inOrder = false }
    }
    let elapsed = clock.now - start
    sender.join()
    let delivered = engine.counts(for: rt).delivered - before
    if let observer {
        waitUntil("observer counted the burst") {
            metrics.counters(label: "signalcore_deliveries_total").reduce(0) { $0 + $1.totalValue } >= Int64(delivered)
        }
        let timed = { metrics.timers(label: "signalcore_delivery_latency").flatMap(\.values) }
        let lost = { metrics.counters(label: "signalcore_telemetry_dropped_events_total").reduce(0) { $0 + $1.totalValue } }
        if mode == "with" {
            waitUntil("observer timed or lost every event") { Int64(timed().count) + lost() >= Int64(delivered) }
        }
        observer.cancel()
        runAsync { await observer.value }
        let latencies = timed().sorted()
        func percentile(_ p: Double) -> Int64 {
            latencies.isEmpty ? -1 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        say("observer counted=\(metrics.counters(label: "signalcore_deliveries_total").reduce(0) { $0 + $1.totalValue }) timed=\(latencies.count) lost=\(lost()) p50_ns=\(percentile(0.5)) p99_ns=\(percentile(0.99)) max_ns=\(latencies.last ?? -1)")
    }
    let ns = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    say("burst count=\(count) received=\(received) delivered=\(delivered) in_order=\(inOrder ? 1 : 0) elapsed_ns=\(ns) per_second=\(Int64(Double(count) / (Double(ns) / 1e9)))")
    application.cancel()
    must("stop") { try engine.stop() }
}
#endif
