#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import SignalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SignalTelemetry with a capturing log handler (InMemoryLogging) and metrics factory (MetricsTestKit), in a
/// helper process that gets real signals from this process and from itself.
@Suite struct TelemetryTests {
    /// A burst of 2000 queued SIGRTMIN while the observer times every event: the application still gets
    /// every one in order, the observer's counter is exact, and every event was either timed or counted as
    /// lost by the observer's own subscription.
    @Test func burstIsCountedExactlyWhileObserved() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["telemetry-burst", "2000", "with"])
        let exit = try helper.finish(timeout: .seconds(120))
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)
        let burst = fields(helper.lines(startingWith: "burst").first ?? "")
        #expect(burst["received"] == "2000")
        #expect(burst["delivered"] == "2000")
        #expect(burst["in_order"] == "1")
        let observer = fields(helper.lines(startingWith: "observer").first ?? "")
        #expect(observer["counted"] == "2000")
        let timed = Int(observer["timed"] ?? "") ?? -1
        let lost = Int(observer["lost"] ?? "") ?? -1
        #expect(timed + lost == 2000)
        #expect(timed > 0)
    }

    @Test func logsAndMetricsMatchTheEngine() throws {
        let helper = try SpawnedProcess("SignalCoreIntegrationHelper", ["telemetry"])
        #expect(try helper.waitForLine(startingWith: "early ") == "early engine_running=0 subscriptions=0")
        let odd = fields(try helper.waitForLine(startingWith: "odd_thread"))["tid"]
        try helper.waitForLine(startingWith: "READY")
        for k in 1...3 {
            try helper.send(SIGUSR1)
            try helper.waitForLine(startingWith: "usr1 delivered=\(k)")
        }
        let rt = Signal.realtime(0).rawValue
        for value in 1...4 { try helper.queue(rt, value: CInt(value)) }
        let exit = try helper.finish()
        #expect(exit == .exited(0), "\(helper.lines)")
        #expect(helper.failures.isEmpty)

        // Metrics: exact delivery counts per signal and route, dropped records, one latency per delivery handed
        // to subscribers (phase 2 is manual delivery: no events).
        let metrics = Dictionary(uniqueKeysWithValues: helper.lines(startingWith: "metric").map(fields).map { ($0["signal"] ?? "", $0) })
        let usr1 = metrics["\(SIGUSR1)"] ?? [:]
        let usr2 = metrics["\(SIGUSR2)"] ?? [:]
        let rtmin = metrics["\(rt)"] ?? [:]
        #expect(usr1["wait_thread"] == "3")
        #expect(usr1["handler"] == "0")
        #expect(usr1["dropped"] == "0")
        #expect(usr1["latency_count"] == "3")
        #expect(usr2["wait_thread"] == "0")
        #expect(usr2["handler"] == "1")
        #expect(usr2["latency_count"] == "1")
        #expect(rtmin["wait_thread"] == "4")
        #expect(rtmin["handler"] == "5")
        #expect(rtmin["dropped"] == "3")
        #expect(rtmin["latency_count"] == "4")
        // Latency: positive, and far below the test's own timeouts.
        for m in [usr1, usr2, rtmin] {
            let low = Int64(m["latency_min_ns"] ?? "") ?? -1
            let high = Int64(m["latency_max_ns"] ?? "") ?? -1
            #expect(low > 0)
            #expect(high < 5_000_000_000)
        }
        #expect(helper.lines.contains("gauge engine_running_last=0 engine_running_max=1"))
        #expect(helper.lines.contains("engine rt_delivered=9 rt_dropped=3"))

        // Logs: two starts and two stops, the handler route (one line per signal: the logs of a burst are
        // folded), the dropped records and the audit finding.
        let logs = helper.lines(startingWith: "log ")
        #expect(logs.filter { $0.contains("message=\"signal engine started\"") }.count == 2)
        #expect(logs.filter { $0.contains("message=\"signal engine stopped\"") }.count == 2)
        let handler = logs.filter { $0.contains("fallback handler route") }.map(fields)
        #expect(handler.count == 2)
        #expect(handler.map { $0["signal"] } == ["SIGUSR2", "SIGRTMIN"])
        #expect(handler.map { $0["count"] } == ["1", "5"])
        #expect(handler.map { $0["level"] } == ["notice", "notice"])
        let dropped = logs.filter { $0.contains("records dropped") }
        #expect(dropped.count == 1)
        #expect(dropped.first.map { fields($0)["signal"] == "SIGRTMIN" && fields($0)["count"] == "3" } == true)
        #expect(dropped.first?.hasPrefix("log level=warning") == true)
        let audit = logs.filter { $0.contains("lets watched signals in beside the engine") }
        #expect(audit.count == 1)
        #expect(audit.first.map { fields($0)["tid"] } == odd)
    }
}
#endif
