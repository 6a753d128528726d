#if ServiceLifecycleIntegration
import Logging
import ServiceLifecycle
import SignalCore
import Synchronization

/// A `Service` that reloads on SIGHUP (or any signals you choose): it calls your async `reload` closure, one
/// reload at a time, and folds a burst of signals that arrive during a reload into one more reload.
///
/// Reloads never overlap. Signals that arrive while a reload runs are counted, and when it ends exactly one
/// more reload runs, with the newest delivery and the number of deliveries it stands for
/// (``Request/coalesced``). So the guarantee is the useful one: *after the last signal, a reload starts that
/// saw it*. A reload that throws is logged (error) and counted; the service keeps running.
///
/// Add it to a `ServiceGroup`. On graceful shutdown it stops taking signals, lets a running reload finish,
/// and returns. Cancellation cancels a running reload's task.
///
/// ```swift
/// let reloader = SignalReloadService(logger: logger) { request in
///     try await config.reload()
///     logger.info("reloaded", metadata: ["signals": "\(request.coalesced)"])
/// }
/// let group = ServiceGroup(services: [server, reloader], logger: logger)
/// ```
///
/// It subscribes to its signals on `SignalEngine.shared` when it is made, which makes the engine watch them
/// (starting it with the default configuration if it is not running: start it first for another). So a signal
/// that arrives before the group runs the service is not lost: it waits in the subscription and is answered by
/// the first reload. When the service returns the signals stay watched, by the engine's claim rule: in the usual group, where the
/// reload service stops first and other services still drain, a SIGHUP that arrives then (a `logrotate` or a
/// `systemctl reload` at the wrong moment) is counted and starts no reload, instead of meeting SIGHUP's default
/// action, which would end the process.
public final class SignalReloadService: Service, Sendable, CustomStringConvertible {
    /// What one reload is asked to do.
    public struct Request: Sendable, Hashable {
        /// The newest delivery this reload answers.
        public var event: SignalEvent
        /// Deliveries this reload answers: 1, or more when signals arrived during the previous reload.
        public var coalesced: Int
        /// 1 for the first reload of this service, 2 for the second, and so on.
        public var number: Int

        /// Makes a request; the service makes these, tests may too.
        public init(event: SignalEvent, coalesced: Int, number: Int) {
            self.event = event
            self.coalesced = coalesced
            self.number = number
        }
    }

    /// Counters of what the service saw and did.
    public struct Statistics: Sendable, Hashable {
        /// Deliveries of the reload signals seen while running.
        public var signalsReceived: Int = 0
        /// Reloads that returned normally.
        public var reloadsCompleted: Int = 0
        /// Reloads that threw.
        public var reloadsFailed: Int = 0
    }

    /// The signals that ask for a reload.
    public let signals: SignalSet

    private let reload: @Sendable (Request) async throws -> Void
    private let logger: Logger
    private let subscription: ServiceSubscription
    private let statisticsBox = Mutex(Statistics())

    /// Pending deliveries not yet answered by a reload: the newest and how many.
    private struct Pending {
        var event: SignalEvent
        var count: Int
    }

    private final class PendingBox: Sendable {
        let value = Mutex<Pending?>(nil)
    }

    /// Makes a reload service.
    ///
    /// - Parameters:
    ///   - signals: The signals that ask for a reload. Default: SIGHUP.
    ///   - logger: Receives one line per reload (info), and failures (error).
    ///   - reload: Does the reload. Runs on the service's task, never concurrently with itself.
    public init(
        signals: SignalSet = [.sighup],
        logger: Logger = Logger(label: "signalcore.reload"),
        reload: @escaping @Sendable (Request) async throws -> Void
    ) {
        self.signals = signals
        self.logger = logger
        self.reload = reload
        self.subscription = ServiceSubscription(signals)
    }

    /// What the service saw and did so far.
    public var statistics: Statistics { statisticsBox.withLock { $0 } }

    /// "SignalReloadService([SIGHUP])": how ServiceGroup names the service in its logs.
    public var description: String { "SignalReloadService(\(signals))" }

    /// Answers reload signals until graceful shutdown or cancellation.
    ///
    /// Throws a `SignalError` if the engine could not watch the signals, or runs with manual delivery (its
    /// subscriptions get no events).
    public func run() async throws {
        let events = try subscription.take()

        // The doorbell holds at most one ring: however many signals arrive during a reload, the loop below
        // wakes once more, and takes everything pending in one go.
        let (doorbell, ring) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let pending = PendingBox()
        let collector = Task {
            for await event in events {
                pending.value.withLock { pending in
                    if pending == nil {
                        pending = Pending(event: event, count: 1)
                    } else {
                        pending!.event = event
                        pending!.count += 1
                    }
                }
                self.statisticsBox.withLock { $0.signalsReceived += 1 }
                ring.yield()
            }
            ring.finish()
        }
        defer { collector.cancel() }

        await withGracefulShutdownHandler {
            var number = 0
            for await _ in doorbell {
                if Task.isShuttingDownGracefully { break }
                guard let next = pending.value.withLock({ pending in
                    defer { pending = nil }
                    return pending
                }) else { continue }
                number += 1
                await perform(Request(event: next.event, coalesced: next.count, number: number))
                if Task.isCancelled { break }
            }
        } onGracefulShutdown: {
            // Stop taking signals; the loop ends once a running reload returns.
            collector.cancel()
            ring.finish()
        }
    }

    private func perform(_ request: Request) async {
        do {
            try await reload(request)
            statisticsBox.withLock { $0.reloadsCompleted += 1 }
            logger.info(
                "reloaded",
                metadata: [
                    "reload": "\(request.number)", "signal": "\(request.event.signal)",
                    "sender-pid": "\(request.event.senderPID)", "coalesced": "\(request.coalesced)",
                ])
        } catch {
            statisticsBox.withLock { $0.reloadsFailed += 1 }
            logger.error(
                "reload failed",
                metadata: ["reload": "\(request.number)", "signal": "\(request.event.signal)", "error": "\(error)"])
        }
    }
}
#else
/// Built without the `ServiceLifecycleIntegration` trait (so without swift-service-lifecycle): unavailable.
/// Enable the trait where you depend on SignalCore: `.package(url: "…/SignalCore", from: "…", traits: ["ServiceLifecycleIntegration"])`.
@available(*, unavailable, message: "SignalReloadService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
public final class SignalReloadService {
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalReloadService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Request {}
    /// Unavailable without the `ServiceLifecycleIntegration` trait.
    @available(*, unavailable, message: "SignalReloadService needs SignalCore's ServiceLifecycleIntegration trait: add traits: [\"ServiceLifecycleIntegration\"] to the .package line of SignalCore")
    public enum Statistics {}
}
#endif
