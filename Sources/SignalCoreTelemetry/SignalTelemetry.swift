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
/// Nothing here runs in a signal handler or on the recorder's path. The observer reads the recorder's counters
/// (one atomic load each) every ``Configuration/pollInterval``, and, for the delivery-latency timer, consumes an
/// events subscription like any other subscriber. The only cost it adds to a delivery is that subscription's
/// hand-off on the wait thread, and the observer task's own wake-ups, which compete for the cores with your
/// code under a burst; set ``Configuration/measureLatency`` to false to avoid both.
///
/// Logs (label of the logger you pass):
/// - info: the engine started (with the watched signals), stopped, or changed its watched set;
/// - warning: records dropped because the ring was full (signal, how many);
/// - notice: deliveries that took the fallback handler route (signal, how many): some thread had the
///   signal unblocked;
/// - warning: mask audit findings: a thread that does not block the watched signals, or a mask change that
///   could not reach every thread.
///
/// Metrics (names start with ``Configuration/labelPrefix``, "signalcore" by default):
/// - counter `signalcore_deliveries_total`, dimensions `signal` and `route` (`wait_thread` or `handler`);
/// - counter `signalcore_dropped_records_total`, dimension `signal`;
/// - timer `signalcore_delivery_latency`, dimension `signal`: the time from the recorder seeing a delivery
///   (`SignalEvent.monotonicNanoseconds`) to this observer's task receiving it;
/// - gauge `signalcore_engine_running`: 1 or 0;
/// - counter `signalcore_telemetry_dropped_events_total`: events the latency subscription lost because the
///   observer fell behind (the delivery counters stay exact regardless).
///
/// Counters report deliveries for the life of the process (the recorder's counters never reset), so the first
/// refresh reports everything delivered before the observer started.
///
/// ```swift
/// let telemetry = SignalTelemetry(logger: logger)
/// let observer = Task { await telemetry.run() }   // until cancelled
/// ```
public final class SignalTelemetry: Sendable {
    /// What to observe and how often.
    public struct Configuration: Sendable, Hashable {
        /// Signals to report per signal. Empty (the default) follows the engine's watched set, and keeps
        /// reporting signals it stopped watching.
        public var signals: SignalSet
        /// How often ``run()`` reads the counters. Default: one second.
        public var pollInterval: Duration
        /// Whether ``run()`` subscribes to events to time delivery latency. Default: true.
        public var measureLatency: Bool
        /// Whether to audit every thread's mask when the engine starts or changes its watched set.
        /// Default: true.
        public var auditMasks: Bool
        /// Prefix of every metric name. Default: "signalcore".
        public var labelPrefix: String

        /// Makes a configuration; see the properties for the defaults.
        public init(
            signals: SignalSet = [],
            pollInterval: Duration = .seconds(1),
            measureLatency: Bool = true,
            auditMasks: Bool = true,
            labelPrefix: String = "signalcore"
        ) {
            self.signals = signals
            self.pollInterval = pollInterval
            self.measureLatency = measureLatency
            self.auditMasks = auditMasks
            self.labelPrefix = labelPrefix
        }
    }

    /// The configuration this observer runs with.
    public let configuration: Configuration

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
    }

    private struct State {
        var perSignal: [CInt: PerSignal] = [:]
        var wasRunning = false
        var lastWatched = SignalSet()
        var telemetryDroppedSeen: UInt64 = 0
    }

    /// Makes an observer. It does nothing until ``run()`` or ``refresh()``.
    ///
    /// - Parameters:
    ///   - configuration: What to observe and how often.
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

    /// Observes until the calling task is cancelled: refreshes every ``Configuration/pollInterval`` and, when
    /// ``Configuration/measureLatency`` is set, times every delivery of the observed signals.
    public func run() async {
        await withTaskGroup(of: Void.self) { tasks in
            if configuration.measureLatency {
                tasks.addTask { await self.timeDeliveries() }
            }
            tasks.addTask {
                while !Task.isCancelled {
                    self.refresh()
                    try? await Task.sleep(for: self.configuration.pollInterval)
                }
            }
        }
        refresh()
    }

    /// Reads the engine's state and counters once, now, and reports what changed since the previous refresh.
    /// ``run()`` calls this periodically; call it yourself for a report at a moment of your choosing.
    public func refresh() {
        let running = engine.isRunning
        let watched = engine.watchedSignals
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
            state.wasRunning = running
            if running { state.lastWatched = watched }
            engineRunning.record(running ? 1 : 0)

            var observed = configuration.signals
            if observed.isEmpty {
                observed = watched
                for number in state.perSignal.keys { observed.insert(Signal(number)) }
            }
            for signal in observed {
                update(signal, in: &state)
            }
        }
        if audit, configuration.auditMasks { auditMasks() }
    }

    /// Reports the counter growth of one signal.
    private func update(_ signal: Signal, in state: inout State) {
        let now = engine.counts(for: signal)
        var entry = state.perSignal[signal.rawValue] ?? makeEntry(signal)
        let waitThread = now.viaWaitThread &- entry.seen.viaWaitThread
        let handler = now.viaHandler &- entry.seen.viaHandler
        let dropped = now.droppedRecords &- entry.seen.droppedRecords
        if waitThread > 0 { entry.viaWaitThread.increment(by: Int64(waitThread)) }
        if handler > 0 {
            entry.viaHandler.increment(by: Int64(handler))
            logger.notice(
                "deliveries took the fallback handler route: a thread had the signal unblocked",
                metadata: ["signal": "\(signal)", "count": "\(handler)"])
        }
        if dropped > 0 {
            entry.dropped.increment(by: Int64(dropped))
            logger.warning(
                "records dropped: the record ring was full (counters stay exact)",
                metadata: ["signal": "\(signal)", "count": "\(dropped)"])
        }
        entry.seen = now
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

    /// Logs threads that do not block the watched signals and mask changes that missed threads.
    private func auditMasks() {
        do {
            for report in try engine.auditThreads() where !report.blocksWatched && !report.isWaitThread {
                logger.warning(
                    "thread does not block the watched signals: deliveries may take the handler route",
                    metadata: ["tid": "\(report.threadID)", "thread": "\(report.name)"])
            }
        } catch {
            logger.warning("thread mask audit failed", metadata: ["error": "\(error)"])
        }
        let spread = engine.lastMaskSpread
        if spread.unreachable > 0 || spread.timedOut > 0 {
            logger.warning(
                "the last mask change did not reach every thread",
                metadata: ["unreachable": "\(spread.unreachable)", "timed-out": "\(spread.timedOut)"])
        }
    }

    /// Times deliveries: one subscription per engine run (stopping the engine ends every subscription).
    private func timeDeliveries() async {
        let signals = configuration.signals.isEmpty ? SignalSet(mask: .max) : configuration.signals
        while !Task.isCancelled {
            let events = engine.events(for: signals)
            var count = 0
            var lostReported: UInt64 = 0
            func reportLost() {
                let lost = events.droppedEvents  // one relaxed atomic load
                if lost != lostReported {
                    telemetryDropped.increment(by: Int64(lost &- lostReported))
                    lostReported = lost
                }
            }
            for await event in events {
                observe(event)
                count += 1
                reportLost()
            }
            reportLost()
            // A subscription made while the engine is stopped lives until the next stop, so this loop does not
            // spin; the pause only guards against a stop/start storm.
            if count == 0, !Task.isCancelled { try? await Task.sleep(for: configuration.pollInterval) }
        }
    }

    /// Records one delivery's latency: CLOCK_MONOTONIC now minus the recorder's timestamp.
    func observe(_ event: SignalEvent) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let latency = Swift.max(0, nanoseconds - event.monotonicNanoseconds)
        let timer = state.withLock { state in
            if state.perSignal[event.signal.rawValue] == nil {
                state.perSignal[event.signal.rawValue] = makeEntry(event.signal)
            }
            return state.perSignal[event.signal.rawValue]!.latency
        }
        timer.recordNanoseconds(latency)
    }
}
#else
/// Built without the `TelemetryIntegration` trait (so without swift-log and swift-metrics): unavailable.
/// Enable the trait where you depend on SignalCore: `.package(url: "…/SignalCore", from: "…", traits: ["TelemetryIntegration"])`.
@available(*, unavailable, message: "SignalTelemetry needs SignalCore's TelemetryIntegration trait: add traits: [\"TelemetryIntegration\"] to the .package line of SignalCore")
public final class SignalTelemetry {}
#endif
