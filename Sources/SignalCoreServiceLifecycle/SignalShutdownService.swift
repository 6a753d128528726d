#if ServiceLifecycleIntegration
import Logging
import ServiceLifecycle
import SignalCore
import Synchronization

/// Runs a `ServiceGroup` and drives its shutdown from SignalCore: the first shutdown signal starts the group's
/// graceful shutdown, a second one escalates to cancellation, and once the group has finished the process ends
/// the way ``ExitMode`` says (by default it dies by the signal, as a process without a handler would).
///
/// `ServiceGroup` can trap signals itself (`gracefulShutdownSignals`), but its `UnixSignalsSequence` knows
/// only a fixed list of standard signals, merges repeats, and cannot say who sent a signal. This service uses
/// the `SignalEngine` instead, so it can:
/// - shut down on any watchable signal, real-time signals included;
/// - count every delivery, and escalate on the second one;
/// - tell ``onSignal`` (and the log) the sender's pid and uid, the `si_code` and the queued value;
/// - end the process with the truthful status after a signal (``ExitMode``).
///
/// Give the wrapped group **no** signals of its own (leave `gracefulShutdownSignals` and
/// `cancellationSignals` empty): two owners of one signal disagree about its disposition.
///
/// ```swift
/// let group = ServiceGroup(services: [server], logger: logger)
/// let shutdown = SignalShutdownService(group: group, logger: logger)
/// try await shutdown.run()   // after SIGTERM: the group drains, then the process dies by SIGTERM
/// ```
///
/// **Signals are caught from the start, and stay caught.** The service subscribes to its signals on
/// `SignalEngine.shared` when it is made, which makes the engine watch them (starting it with the default
/// configuration if it is not running: start it first for another). A signal that arrives before ``run()``
/// waits in the subscription and is acted on when ``run()`` starts. When the subscription ends the signals stay
/// watched: that is the engine's claim rule. So a signal that arrives late, when the group is nearly done (a second SIGTERM, or a
/// SIGHUP after a ``SignalReloadService`` has already stopped while another service still drains), is counted
/// and does nothing, instead of meeting the default action and killing the process mid-shutdown.
///
/// **Errors.** Once a signal cancelled the group, whatever the group throws (typically `CancellationError`) is
/// the expected result of that cancellation: it is logged, not thrown, and the exit mode applies. The same holds
/// for a `CancellationError` after a signal started the graceful shutdown (the group's own
/// `maximumGracefulShutdownDuration` cancels it). Any other error is thrown, and the process does not end by
/// itself.
///
/// If this service runs inside an outer `ServiceGroup`, the outer group's graceful shutdown is passed on to the
/// wrapped group, and cancelling ``run()`` cancels the wrapped group. A signal still ends the process once the
/// wrapped group finished, without waiting for the outer group's other services: inside an outer group, choose
/// ``ExitMode/returnNormally``.
public final class SignalShutdownService: Service, Sendable, CustomStringConvertible {
    /// Which signals do what.
    public struct Configuration: Sendable, Hashable {
        /// Signals that start a graceful shutdown of the group. Default: SIGTERM and SIGINT.
        public var gracefulShutdownSignals: SignalSet
        /// Signals that cancel the group at once. Default: none. Must not overlap the graceful shutdown
        /// signals.
        public var cancellationSignals: SignalSet
        /// What a graceful shutdown signal does once a graceful shutdown is already running.
        public var escalation: Escalation
        /// How the process ends once a signal shut the group down. Default: ``ExitMode/reraise``, death by the
        /// signal.
        public var exitMode: ExitMode

        /// Makes a configuration; see the properties for the defaults.
        public init(
            gracefulShutdownSignals: SignalSet = [.sigterm, .sigint],
            cancellationSignals: SignalSet = [],
            escalation: Escalation = .cancelGroup,
            exitMode: ExitMode = .reraise
        ) {
            self.gracefulShutdownSignals = gracefulShutdownSignals
            self.cancellationSignals = cancellationSignals
            self.escalation = escalation
            self.exitMode = exitMode
        }
    }

    /// What a repeated graceful shutdown signal does.
    public enum Escalation: Sendable, Hashable {
        /// The second graceful shutdown signal cancels the group (the "press Ctrl-C twice" convention).
        case cancelGroup
        /// Repeats are counted and reported, nothing more: only a cancellation signal cancels.
        case none
    }

    /// What the service did about one delivery.
    public enum Action: String, Sendable, Hashable {
        /// Started the group's graceful shutdown.
        case gracefulShutdown
        /// Cancelled the group.
        case cancellation
        /// Nothing: the group is already cancelled, or it is shutting down and ``Escalation/none`` is set.
        case none
    }

    /// One delivery and what the service did about it, as passed to ``onSignal``.
    public struct Trigger: Sendable, Hashable, CustomStringConvertible {
        /// The delivery, with its sender and `si_code`.
        public var event: SignalEvent
        /// What the service did.
        public var action: Action
        /// 1 for the first delivery this service saw, 2 for the second, and so on.
        public var ordinal: Int

        /// Makes a trigger; the service makes these, tests may too.
        public init(event: SignalEvent, action: Action, ordinal: Int) {
            self.event = event
            self.action = action
            self.ordinal = ordinal
        }

        /// "SIGTERM #2 from pid 812: cancellation".
        public var description: String {
            "\(event.signal) #\(ordinal) from pid \(event.senderPID): \(action.rawValue)"
        }
    }

    /// Counters of what the service saw and did.
    public struct Statistics: Sendable, Hashable {
        /// Deliveries of the configured signals seen while running.
        public var signalsReceived: Int = 0
        /// Whether a graceful shutdown was started by a signal.
        public var gracefulShutdownTriggered = false
        /// Whether the group was cancelled by a signal.
        public var cancelled = false
        /// The most recent delivery.
        public var lastEvent: SignalEvent?
    }

    /// The configuration this service runs with.
    public let configuration: Configuration
    /// Called on the listening task for every delivery, after the action was taken. Keep it short: the next
    /// delivery waits for it.
    public let onSignal: (@Sendable (Trigger) -> Void)?

    private let group: ServiceGroup
    private let logger: Logger
    private let subscription: ServiceSubscription
    private let statisticsBox = Mutex(Statistics())
    /// The signal whose action ends the group, and whether that action was a cancellation. Written by the
    /// listener, read by ``run()`` once the listener has ended.
    private let ending = Mutex<(signal: Signal, cancelled: Bool)?>(nil)

    /// Wraps `group`.
    ///
    /// - Parameters:
    ///   - group: The group to run. Configure it without signals of its own.
    ///   - configuration: Which signals shut down, cancel and escalate.
    ///   - logger: Receives one line per delivery (notice) and the start and end of the run (debug).
    ///   - onSignal: Called for every delivery, after the action was taken.
    /// - Precondition: The graceful shutdown and cancellation signals do not overlap.
    public init(
        group: ServiceGroup,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "signalcore.lifecycle"),
        onSignal: (@Sendable (Trigger) -> Void)? = nil
    ) {
        precondition(
            configuration.gracefulShutdownSignals.isDisjoint(with: configuration.cancellationSignals),
            "graceful shutdown and cancellation signals overlap")
        self.group = group
        self.configuration = configuration
        self.logger = logger
        self.onSignal = onSignal
        self.subscription = ServiceSubscription(
            configuration.gracefulShutdownSignals.union(configuration.cancellationSignals))
    }

    /// What the service saw and did so far.
    public var statistics: Statistics { statisticsBox.withLock { $0 } }

    /// "SignalShutdownService(graceful: [...], cancel: [...])": how ServiceGroup names the service in its logs.
    public var description: String {
        "SignalShutdownService(graceful: \(configuration.gracefulShutdownSignals), cancel: \(configuration.cancellationSignals))"
    }

    /// Runs the group until it finishes, turning signals into graceful shutdown and cancellation; then, when a
    /// signal shut the group down, ends the process as ``Configuration/exitMode`` says (returning only for
    /// ``ExitMode/returnNormally``).
    ///
    /// Throws a `SignalError` if the engine could not watch the signals, or runs with manual delivery (then the
    /// group never started), and
    /// what the group's `run()` throws, except the errors that follow a signal's cancellation (see "Errors"
    /// above).
    public func run() async throws {
        let events = try subscription.take()
        logger.debug("waiting for shutdown signals", metadata: ["signals": "\(subscription.signals)"])

        let group = self.group
        let runner = Task { try await group.run() }
        let listener = Task { await listen(to: events, runner: runner) }

        let result = await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await runner.result
            } onGracefulShutdown: {
                // An outer group shuts down gracefully: pass it on.
                Task { await group.triggerGracefulShutdown() }
            }
        } onCancel: {
            runner.cancel()
        }
        // The listener may be acting on a delivery right now: let it finish (its callback included) before
        // reporting the end.
        listener.cancel()
        await listener.value
        logger.debug("service group finished")

        guard let ending = ending.withLock({ $0 }) else { return try result.get() }
        if case .failure(let error) = result {
            guard ending.cancelled || error is CancellationError else { throw error }
            logger.debug("the group ended with an error after a signal cancelled it", metadata: ["error": "\(error)"])
        }
        logger.debug("ending the process", metadata: ["signal": "\(ending.signal)", "exit-mode": "\(configuration.exitMode)"])
        configuration.exitMode.finish(after: ending.signal)
    }

    /// Consumes deliveries until cancelled; acts on each in turn.
    private func listen(to events: SignalEvents, runner: Task<Void, any Error>) async {
        var shuttingDown = false
        var cancelled = false
        for await event in events {
            let action: Action
            if configuration.cancellationSignals.contains(event.signal) {
                action = cancelled ? .none : .cancellation
            } else if !shuttingDown && !cancelled {
                action = .gracefulShutdown
            } else if configuration.escalation == .cancelGroup && !cancelled {
                action = .cancellation
            } else {
                action = .none
            }
            let ordinal = statisticsBox.withLock { statistics in
                statistics.signalsReceived += 1
                statistics.lastEvent = event
                if action == .gracefulShutdown { statistics.gracefulShutdownTriggered = true }
                if action == .cancellation { statistics.cancelled = true }
                return statistics.signalsReceived
            }
            logger.notice(
                "signal received",
                metadata: [
                    "signal": "\(event.signal)", "sender-pid": "\(event.senderPID)", "si-code": "\(event.code)",
                    "ordinal": "\(ordinal)", "action": "\(action.rawValue)",
                ])
            switch action {
            case .gracefulShutdown:
                shuttingDown = true
                ending.withLock { $0 = (event.signal, false) }
                await group.triggerGracefulShutdown()
            case .cancellation:
                cancelled = true
                ending.withLock { $0 = (event.signal, true) }
                runner.cancel()
            case .none:
                break
            }
            onSignal?(Trigger(event: event, action: action, ordinal: ordinal))
        }
    }
}
#else
/// Built without the `ServiceLifecycleIntegration` trait (so without swift-service-lifecycle): unavailable.
/// Enable the trait where you depend on SignalCore: `.package(url: "…/SignalCore", from: "…", traits: ["ServiceLifecycleIntegration"])`.
@available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
public final class SignalShutdownService {
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Configuration {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Escalation {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Action {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Trigger {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Statistics {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalShutdownService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum ExitMode {}
}
#endif
