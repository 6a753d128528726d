#if TelemetryIntegration
import Logging
import Metrics
import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reports what the signal engine does to swift-log and swift-metrics, from ordinary task context.
///
/// Nothing here runs in a signal handler or on the recorder's path. ``run()`` is driven by the deliveries
/// themselves: it subscribes to the observed signals and, for each delivery it is handed, brings that signal's
/// counters up to date (one atomic load per counter), times the delivery, and notices when the engine's watched
/// set changed. An idle process therefore costs it nothing: no timer, no periodic wake-up. The cost it adds to a
/// delivery is its subscription's hand-off on the wait thread and one wake-up of the observer task (fewer under
/// a burst, when the task finds several events waiting).
///
/// **What it observes.** ``Configuration/signals``, or the signals the engine watches when that is empty, and
/// of those only the ones the engine watches already: the observer never makes the engine watch a signal, so it
/// never changes what a signal does to the process. Its subscription counts as a claim, though: while it
/// observes a signal, `SignalEngine.unwatch(_:)` of that signal throws `stillClaimed`; cancel the observer first.
///
/// **What waits for a delivery.** Things that happen without one are reported at the next delivery the
/// observer sees, at a ``refresh()`` you call, or when ``run()`` ends: the engine starting or changing its
/// watched set, records dropped while the ring was full (those deliveries make no event), and deliveries of a
/// signal the engine started watching after the observer subscribed. After the engine stops, the observer
/// cannot subscribe again without starting it, so it waits for cancellation. To follow such changes on a clock
/// anyway, set ``Configuration/refreshInterval``: an opt-in periodic refresh, which wakes the process at that
/// pace whether or not anything happens.
///
/// The observer's subscription drops its oldest events rather than hold signals back when the observer falls
/// behind (it never slows the application's subscriptions); the counters stay exact regardless, since they are
/// read from the recorder, and the events it lost are counted.
///
/// Logs (label of the logger you pass):
/// - info: the engine started (with the watched signals), stopped, or changed its watched set;
/// - warning: records dropped because the ring was full (signal, how many);
/// - notice: deliveries that took the fallback handler route (signal, how many): some thread had the
///   signal unblocked;
/// - warning: mask audit findings: a thread that lets watched signals in beside the engine, or a mask change
///   that left threads competing for them or untracked.
///
/// The two counts that can grow with every delivery of a burst (dropped records, handler route) are logged at
/// most once a second per signal, with the number since the previous line; a ``refresh()`` logs what is left.
///
/// Metrics (names start with ``Configuration/labelPrefix``, "signalcore" by default):
/// - counter `signalcore_deliveries_total`, dimensions `signal` and `route` (`wait_thread` or `handler`);
/// - counter `signalcore_dropped_records_total`, dimension `signal`;
/// - timer `signalcore_delivery_latency`, dimension `signal`: the time from the recorder seeing a delivery
///   (`SignalEvent.monotonicNanoseconds`) to this observer's task receiving it;
/// - gauge `signalcore_engine_running`: 1 or 0;
/// - counter `signalcore_telemetry_dropped_events_total`: events the observer's subscription lost because the
///   observer fell behind (the delivery counters stay exact regardless).
///
/// Counters report deliveries for the life of the process (the recorder's counters never reset), so the first
/// report of a signal includes everything delivered before the observer started.
///
/// ```swift
/// import Logging
/// import SignalCore
/// import SignalCoreTelemetry
///
/// func waitForHangup(logger: Logger) async throws {
///     let hangups = try SignalEngine.shared.events(for: [.sighup])   // the application's own subscription
///     let telemetry = SignalTelemetry(logger: logger)   // metrics go to MetricsSystem's factory
///     let observer = Task { await telemetry.run() }      // wakes only when a signal comes, until cancelled
///     for await _ in hangups { break }
///     observer.cancel()
/// }
/// ```
public final class SignalTelemetry: Sendable {
    /// What to observe, and whether to refresh on a clock too.
    public struct Configuration: Sendable, Hashable {
        /// Signals to report per signal, among those the engine watches. Empty (the default) follows the
        /// engine's watched set, and keeps reporting signals it stopped watching.
        public var signals: SignalSet
        /// How often ``run()`` also refreshes on a clock; nil (the default) refreshes only when a delivery
        /// comes, so an idle process is never woken. Set it to report engine changes and dropped records that
        /// come without a delivery, and to follow the engine across a stop and a new start.
        public var refreshInterval: Duration?
        /// Whether ``run()`` times every delivery it is handed. Default: true.
        public var measureLatency: Bool
        /// Whether to audit every thread's mask when the engine starts or changes its watched set.
        /// Default: true.
        public var auditMasks: Bool
        /// Prefix of every metric name. Default: "signalcore".
        public var labelPrefix: String

        /// Makes a configuration; see the properties for the defaults.
        public init(
            signals: SignalSet = [],
            refreshInterval: Duration? = nil,
            measureLatency: Bool = true,
            auditMasks: Bool = true,
            labelPrefix: String = "signalcore"
        ) {
            self.signals = signals
            self.refreshInterval = refreshInterval
            self.measureLatency = measureLatency
            self.auditMasks = auditMasks
            self.labelPrefix = labelPrefix
        }
    }

    /// The configuration this observer runs with.
    public let configuration: Configuration

    /// Events the observer's subscription holds before it drops the oldest.
    static let observerBuffer = 1024
    /// The least time between two log lines about one signal's dropped records or handler-route deliveries.
    static let logInterval: Int64 = 1_000_000_000

    private let engine: SignalEngine
    private let logger: Logger
    private let factory: (any MetricsFactory)?
    private let state = Mutex(State())
    private let engineRunning: Gauge
    private let telemetryDropped: Counter

    private struct PerSignal {
        var seen = SignalCounts()
        let viaWaitThread: Counter
        let viaHandler: Counter
        let dropped: Counter
        let latency: Metrics.Timer
        /// Handler-route deliveries and dropped records counted but not logged yet.
        var unloggedHandler: UInt64 = 0
        var unloggedDropped: UInt64 = 0
        /// CLOCK_MONOTONIC of the last such log line, in nanoseconds.
        var loggedAt: Int64 = .min
    }

    private struct State {
        var perSignal: [CInt: PerSignal] = [:]
        var wasRunning = false
        var lastWatched = SignalSet()
    }

    /// Makes an observer. It does nothing until ``run()`` or ``refresh()``.
    ///
    /// - Parameters:
    ///   - configuration: What to observe.
    ///   - logger: Where engine events go.
    ///   - metricsFactory: Where metrics go; nil (the default) uses the factory bootstrapped in `MetricsSystem`.
    public init(
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "signalcore"),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.configuration = configuration
        self.engine = .shared
        self.logger = logger
        self.factory = metricsFactory
        let prefix = configuration.labelPrefix
        if let factory = metricsFactory {
            engineRunning = Gauge(label: prefix + "_engine_running", dimensions: [], factory: factory)
            telemetryDropped = Counter(label: prefix + "_telemetry_dropped_events_total", dimensions: [], factory: factory)
        } else {
            engineRunning = Gauge(label: prefix + "_engine_running")
            telemetryDropped = Counter(label: prefix + "_telemetry_dropped_events_total")
        }
    }

    /// Observes until the calling task is cancelled: reports at once, then at every delivery of an observed
    /// signal (and every ``Configuration/refreshInterval`` when one is set), and once more at the end.
    public func run() async {
        refresh()
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.observeDeliveries() }
            if let interval = configuration.refreshInterval {
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        self.refresh()
                    }
                }
            }
        }
        refresh()
    }

    /// Reads the engine's state and counters once, now, and reports what changed since the previous report,
    /// including the dropped records and handler-route deliveries not logged yet. ``run()`` calls this when it
    /// starts and ends; call it yourself for a report at a moment of your choosing.
    public func refresh() {
        report(flushLogs: true) { state, watched in
            var observed = configuration.signals
            if observed.isEmpty {
                observed = watched
                for number in state.perSignal.keys { observed.insert(Signal(number)) }
            }
            return observed
        }
    }

    /// Reports the engine's state (logged when it changed, with a mask audit), then the counters of the signals
    /// that `signals` picks from the state and the watched set. Returns the watched set.
    @discardableResult
    private func report(flushLogs: Bool, signals: (State, SignalSet) -> SignalSet) -> SignalSet {
        let running = engine.isRunning
        let watched = running ? engine.watchedSignals : SignalSet()
        var audit = false
        state.withLock { state in
            if running != state.wasRunning {
                if running {
                    logger.info("signal engine started", metadata: ["watched": "\(watched)"])
                } else {
                    logger.info("signal engine stopped")
                }
                audit = running
            } else if running, watched != state.lastWatched {
                logger.info("signal engine watches a new set", metadata: ["watched": "\(watched)"])
                audit = true
            }
            if flushLogs || running != state.wasRunning { engineRunning.record(running ? 1 : 0) }
            state.wasRunning = running
            if running { state.lastWatched = watched }
            for signal in signals(state, watched) {
                update(signal, in: &state, flushLogs: flushLogs)
            }
        }
        if audit, configuration.auditMasks { auditMasks() }
        return watched
    }

    /// Reports the counter growth of one signal; logs dropped records and handler-route deliveries at most once
    /// per ``logInterval`` (or now, with `flushLogs`).
    private func update(_ signal: Signal, in state: inout State, flushLogs: Bool) {
        let now = engine.counts(for: signal)
        var entry = state.perSignal[signal.rawValue] ?? makeEntry(signal)
        let waitThread = now.viaWaitThread &- entry.seen.viaWaitThread
        let handler = now.viaHandler &- entry.seen.viaHandler
        let dropped = now.droppedRecords &- entry.seen.droppedRecords
        if waitThread > 0 { entry.viaWaitThread.increment(by: Int64(waitThread)) }
        if handler > 0 { entry.viaHandler.increment(by: Int64(handler)) }
        if dropped > 0 { entry.dropped.increment(by: Int64(dropped)) }
        entry.seen = now
        entry.unloggedHandler &+= handler
        entry.unloggedDropped &+= dropped
        if entry.unloggedHandler > 0 || entry.unloggedDropped > 0 {
            let clock = SignalTelemetry.monotonicNanoseconds()
            if flushLogs || entry.loggedAt == .min || clock &- entry.loggedAt >= SignalTelemetry.logInterval {
                if entry.unloggedHandler > 0 {
                    logger.notice(
                        "deliveries took the fallback handler route: a thread had the signal unblocked",
                        metadata: ["signal": "\(signal)", "count": "\(entry.unloggedHandler)"])
                }
                if entry.unloggedDropped > 0 {
                    logger.warning(
                        "records dropped: the record ring was full (counters stay exact)",
                        metadata: ["signal": "\(signal)", "count": "\(entry.unloggedDropped)"])
                }
                entry.unloggedHandler = 0
                entry.unloggedDropped = 0
                entry.loggedAt = clock
            }
        }
        state.perSignal[signal.rawValue] = entry
    }

    private func makeEntry(_ signal: Signal) -> PerSignal {
        let prefix = configuration.labelPrefix
        let name = signal.description
        func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
            if let factory { return Counter(label: label, dimensions: dimensions, factory: factory) }
            return Counter(label: label, dimensions: dimensions)
        }
        let latency: Metrics.Timer
        if let factory {
            latency = Metrics.Timer(label: prefix + "_delivery_latency", dimensions: [("signal", name)], factory: factory)
        } else {
            latency = Metrics.Timer(label: prefix + "_delivery_latency", dimensions: [("signal", name)])
        }
        return PerSignal(
            viaWaitThread: counter(prefix + "_deliveries_total", [("signal", name), ("route", "wait_thread")]),
            viaHandler: counter(prefix + "_deliveries_total", [("signal", name), ("route", "handler")]),
            dropped: counter(prefix + "_dropped_records_total", [("signal", name)]),
            latency: latency)
    }

    /// Logs threads that let watched signals in beside the engine, and a mask change that left threads
    /// competing for them or untracked.
    private func auditMasks() {
        do {
            for report in try engine.auditThreads() where report.role == .other && !report.openWatched.isEmpty {
                logger.warning(
                    "thread lets watched signals in beside the engine: their deliveries may take the handler route",
                    metadata: ["tid": "\(report.threadID)", "thread": "\(report.name)", "signals": "\(report.openWatched)"])
            }
        } catch {
            logger.warning("thread mask audit failed", metadata: ["error": "\(error)"])
        }
        let spread = engine.lastMaskSpread
        if spread.competing > 0 || spread.untracked > 0 {
            logger.warning(
                "the last mask change left threads that take watched signals beside the engine",
                metadata: ["competing": "\(spread.competing)", "untracked": "\(spread.untracked)"])
        }
    }

    /// The signals to subscribe to now: the observed ones the engine watches (none while it is stopped).
    private func observable(watched: SignalSet) -> SignalSet {
        configuration.signals.isEmpty ? watched : configuration.signals.intersection(watched)
    }

    /// The deliveries that drive the reports: one subscription at a time, renewed when the engine's watched set
    /// changes what is observable, until cancelled.
    private func observeDeliveries() async {
        while !Task.isCancelled {
            let observed = engine.isRunning ? observable(watched: engine.watchedSignals) : []
            // Subscribing to signals the engine watches changes nothing in the process. (Between the check above
            // and the subscription, a concurrent stop() would let the subscription start the engine again: stops
            // are rare, and SignalCore offers no subscription that refuses to start it.)
            guard !observed.isEmpty,
                let events = try? engine.events(for: observed, buffering: .bufferingNewest(SignalTelemetry.observerBuffer))
            else {
                // Nothing to observe: with a refresh interval, look again after it; without one, nothing will come
                // that could change this.
                guard let interval = configuration.refreshInterval else {
                    await SignalTelemetry.untilCancelled()
                    return
                }
                try? await Task.sleep(for: interval)
                continue
            }
            var lostReported: UInt64 = 0
            func reportLost() {
                let lost = events.droppedEvents
                if lost != lostReported {
                    telemetryDropped.increment(by: Int64(lost &- lostReported))
                    lostReported = lost
                }
            }
            for await event in events {
                if configuration.measureLatency { time(event) }
                let watched = report(flushLogs: false) { _, _ in [event.signal] }
                reportLost()
                // The engine watches more or fewer of the observed signals now: subscribe anew.
                if observable(watched: watched) != observed { break }
            }
            reportLost()
            // The subscription ended (cancelled, the engine stopped, or the set changed): report where things are.
            if !Task.isCancelled { refresh() }
        }
    }

    /// Records one delivery's latency: CLOCK_MONOTONIC now minus the recorder's timestamp.
    private func time(_ event: SignalEvent) {
        let latency = Swift.max(0, SignalTelemetry.monotonicNanoseconds() - event.monotonicNanoseconds)
        let timer = state.withLock { state in
            if state.perSignal[event.signal.rawValue] == nil {
                state.perSignal[event.signal.rawValue] = makeEntry(event.signal)
            }
            return state.perSignal[event.signal.rawValue]!.latency
        }
        timer.recordNanoseconds(latency)
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Suspends until the calling task is cancelled, without waking meanwhile.
    private static func untilCancelled() async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        await withTaskCancellationHandler {
            for await _ in stream {}
        } onCancel: {
            continuation.finish()
        }
    }
}
#else
/// Built without the `TelemetryIntegration` trait (so without swift-log and swift-metrics): unavailable.
/// Enable the trait where you depend on SignalCore: `.package(url: "…/SignalCore", from: "…", traits: ["TelemetryIntegration"])`.
@available(*, unavailable, message: "SignalTelemetry needs SignalCore's TelemetryIntegration trait: add traits: [\"TelemetryIntegration\"] to the .package line of SignalCore")
public final class SignalTelemetry {
    /// Unavailable without the `TelemetryIntegration` trait.
    @available(*, unavailable, message: "SignalTelemetry needs SignalCore's TelemetryIntegration trait: add traits: [\"TelemetryIntegration\"] to the .package line of SignalCore")
    public enum Configuration {}
}
#endif
