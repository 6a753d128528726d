import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Graceful shutdown: the first SIGTERM or SIGINT starts draining, a deadline bounds it, a second signal ends
/// the process at once.
///
/// ```swift
/// let shutdown = GracefulShutdown()           // deadline 25 s, exit by re-raising the signal
/// try shutdown.start()
/// while !shutdown.isShuttingDown {            // one relaxed atomic load
///     guard let job = queue.next() else { break }
///     job.run()                               // the job in hand always finishes (until the deadline)
/// }
/// shutdown.finish()                           // exit 0, or die by the signal that asked us to stop
/// ```
///
/// State machine (transitions never go back):
/// - ``Phase/running`` → ``Phase/draining`` on the first watched signal (or ``requestShutdown(_:)``): no new
///   work should start; work in hand finishes.
/// - ``Phase/draining`` → ``Phase/cancelled`` when the deadline passes: the ``onCancel(_:)`` handlers run, and
///   after ``Configuration/cancellationGrace`` the process ends by the signal, finished or not.
/// - A second watched signal while draining or cancelled ends the process immediately, by that signal
///   (a duplicate of the first, see ``Configuration/duplicateWindow``, is not a second signal).
///
/// Signals are taken by a monitor thread of its own ("shutdown"), which sleeps with no timeout until a signal
/// arrives, draining starts from code, or a deadline it set is due: an idle shutdown causes no wake-up. Nothing
/// here runs in handler context.
public final class GracefulShutdown: Sendable {
    /// Where the shutdown is.
    public enum Phase: UInt8, Sendable, Hashable, CustomStringConvertible {
        case running = 0
        /// A shutdown was requested: finish the work in hand, start nothing new.
        case draining = 1
        /// The deadline passed: abandon the work in hand.
        case cancelled = 2

        public var description: String {
            switch self {
            case .running: return "running"
            case .draining: return "draining"
            case .cancelled: return "cancelled"
            }
        }
    }

    /// What the monitor did, for logging.
    public enum Transition: Sendable, Hashable {
        /// The first signal (nil: ``requestShutdown(_:)`` without one) started draining.
        case draining(Signal?, deadline: Duration)
        /// The deadline passed with work still running.
        case deadlinePassed(Duration)
        /// A second signal arrived while stopping: the process ends now.
        case immediateExit(Signal)
        /// The same signal from the same sender within ``Configuration/duplicateWindow`` of the first: one
        /// request delivered twice, not a second request.
        case duplicateIgnored(Signal, senderPID: CInt)
    }

    public struct Configuration: Sendable, Hashable {
        /// Signals that request a shutdown. Default: SIGTERM and SIGINT.
        public var signals: SignalSet
        /// How long draining may take. Default 25 s: inside Kubernetes' 30 s grace period.
        public var deadline: Duration
        /// After the deadline, how long the ``onCancel(_:)`` handlers and the application get to clean up
        /// before the process ends anyway. Default 1 s.
        public var cancellationGrace: Duration
        /// How the process ends after a shutdown caused by a signal.
        public var exitMode: ExitMode
        /// A repeat of the first signal, from the same sender, this soon after it, is the same request
        /// delivered twice and does not count as the second signal. `timeout(1)` does exactly that: it sends
        /// SIGTERM to its child and then to its whole process group. Default 100 ms; a person pressing Ctrl-C
        /// twice is slower. `.zero` turns the filter off.
        public var duplicateWindow: Duration

        public init(
            signals: SignalSet = [.sigterm, .sigint], deadline: Duration = .seconds(25),
            cancellationGrace: Duration = .seconds(1), exitMode: ExitMode = .reraise,
            duplicateWindow: Duration = .milliseconds(100)
        ) {
            self.signals = signals
            self.deadline = deadline
            self.cancellationGrace = cancellationGrace
            self.exitMode = exitMode
            self.duplicateWindow = duplicateWindow
        }
    }

    public let configuration: Configuration
    private let phaseWord = Atomic<UInt8>(Phase.running.rawValue)
    private let signalWord = Atomic<Int32>(0)
    private let gate = Gate()
    private struct Waiters {
        var nextID = 0
        var phaseWaiters: [Int: (Phase, CheckedContinuation<Void, Never>)] = [:]
        var drainHandlers: [@Sendable () -> Void] = []
        var cancelHandlers: [@Sendable () -> Void] = []
        var started = false
    }
    private let waiters = Mutex(Waiters())
    private let observer: @Sendable (Transition) -> Void

    /// - Parameter observer: told about each transition, on the monitor thread (for logging).
    public init(configuration: Configuration = Configuration(), observer: @escaping @Sendable (Transition) -> Void = { _ in }) {
        self.configuration = configuration
        self.observer = observer
    }

    // MARK: State

    /// Whether a shutdown was requested. One relaxed atomic load: check it as often as you like.
    @inline(__always)
    public var isShuttingDown: Bool { phaseWord.load(ordering: .relaxed) != Phase.running.rawValue }

    /// Whether the deadline passed and work in hand should be abandoned. One relaxed atomic load.
    @inline(__always)
    public var isCancelled: Bool { phaseWord.load(ordering: .relaxed) == Phase.cancelled.rawValue }

    public var phase: Phase { Phase(rawValue: phaseWord.load(ordering: .acquiring)) ?? .running }

    /// The signal that started the shutdown, if a signal did.
    public var signal: Signal? {
        let n = signalWord.load(ordering: .acquiring)
        return n == 0 ? nil : Signal(n)
    }

    // MARK: Starting

    /// Subscribes to the configured signals (which makes the engine watch them, starting it when needed) and
    /// starts the monitor thread ("shutdown"). Call once; later calls do nothing. Returns once the monitor
    /// thread runs.
    ///
    /// The subscription keeps every delivery (the default ``SignalBuffering``): a second signal is never lost
    /// behind the first.
    public func start() throws(SignalError) {
        let first = waiters.withLock { w -> Bool in
            if w.started { return false }
            w.started = true
            return true
        }
        guard first else { return }
        let thread: LifecycleThread
        let events: SignalEvents
        do {
            thread = try LifecycleThread(name: "shutdown")
        } catch {
            waiters.withLock { $0.started = false }
            throw error
        }
        do {
            events = try SignalEngine.shared.events(for: configuration.signals)
        } catch {
            thread.end()
            waiters.withLock { $0.started = false }
            throw error
        }
        let monitor = Monitor(shutdown: self, thread: thread)
        // Two tasks on the monitor thread, each asleep until its event: a signal, or draining started from code.
        Task(executorPreference: thread) {
            for await event in events { monitor.handle(event) }
        }
        Task(executorPreference: thread) {
            await self.waitFor(.draining)
            monitor.drainingStarted()
        }
    }

    /// Requests a shutdown from code, as if `signal` had arrived (nil: no signal, ``finish(status:)`` then
    /// exits with the status it is given). Does nothing if a shutdown is already under way.
    ///
    /// The ``onDraining(_:)`` handlers run on the calling thread before it returns. The deadline is enforced
    /// only while the monitor runs (after ``start()``); the monitor notices the request at once.
    public func requestShutdown(_ signal: Signal? = nil) {
        if let signal { _ = signalWord.compareExchange(expected: 0, desired: signal.rawValue, ordering: .acquiringAndReleasing) }
        advance(to: .draining)
    }

    // MARK: Waiting

    /// Waits until the shutdown reaches `phase` (or a later one), or `timeout` passes. Returns whether it did.
    /// Use it instead of `sleep` in worker threads: it wakes the moment the phase changes.
    public func wait(for phase: Phase = .draining, timeout: Duration) -> Bool {
        gate.wait(timeout: timeout) { self.phaseWord.load(ordering: .acquiring) >= phase.rawValue }
    }

    /// Suspends until the shutdown reaches `phase` (or a later one). Returns early, without error, if the task
    /// is cancelled.
    public func waitFor(_ phase: Phase = .draining) async {
        if self.phase.rawValue >= phase.rawValue { return }
        let id = waiters.withLock { w -> Int in
            w.nextID += 1
            return w.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = waiters.withLock { w -> Bool in
                    if self.phase.rawValue >= phase.rawValue || Task.isCancelled { return true }
                    w.phaseWaiters[id] = (phase, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = waiters.withLock { $0.phaseWaiters.removeValue(forKey: id)?.1 }
            continuation?.resume()
        }
    }

    /// Runs `handler` once draining starts (or at once if it already did): on the monitor thread for a signal,
    /// on the thread that called ``requestShutdown(_:)`` otherwise. Use it to wake threads that sleep until
    /// there is work, so that they notice ``isShuttingDown``: the phase has changed before the handler runs.
    public func onDraining(_ handler: @escaping @Sendable () -> Void) {
        let runNow = waiters.withLock { w -> Bool in
            if isShuttingDown { return true }
            w.drainHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Runs `handler` on the monitor thread when the deadline passes (or at once if it already did).
    /// Use it to cancel work in hand: cancel tasks, close sockets, wake sleepers.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = waiters.withLock { w -> Bool in
            if isCancelled { return true }
            w.cancelHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    // MARK: Ending

    /// Ends the process after the work is done: by the signal that started the shutdown, the configured way,
    /// or with `status` when no signal did (or no shutdown was requested).
    public func finish(status: Int32 = 0) -> Never {
        guard let signal else {
            fflush(nil)
            exit(status)
        }
        configuration.exitMode.terminate(by: signal)
    }

    // MARK: Internals

    /// Moves the phase forward (never back), wakes every waiter of the phases reached and runs the handlers
    /// registered for them. Returns whether the phase moved.
    @discardableResult
    fileprivate func advance(to phase: Phase) -> Bool {
        // The change and the handler lists are read under one lock, so that onDraining and onCancel either see
        // the new phase or have their handler taken here: never neither.
        let (moved, ready, handlers) = waiters.withLock {
            w -> (Bool, [CheckedContinuation<Void, Never>], [@Sendable () -> Void]) in
            let current = phaseWord.load(ordering: .relaxed)
            guard current < phase.rawValue else { return (false, [], []) }
            phaseWord.store(phase.rawValue, ordering: .releasing)
            let due = w.phaseWaiters.filter { $0.value.0.rawValue <= phase.rawValue }
            for key in due.keys { w.phaseWaiters.removeValue(forKey: key) }
            var handlers: [@Sendable () -> Void] = []
            if current < Phase.draining.rawValue {
                handlers = w.drainHandlers
                w.drainHandlers.removeAll()
            }
            return (true, due.values.map(\.1), handlers)
        }
        guard moved else { return false }
        gate.broadcast()
        for continuation in ready { continuation.resume() }
        for handler in handlers { handler() }
        return true
    }

    fileprivate func takeCancelHandlers() -> [@Sendable () -> Void] {
        waiters.withLock { w in
            let handlers = w.cancelHandlers
            w.cancelHandlers.removeAll()
            return handlers
        }
    }

    fileprivate func report(_ transition: Transition) { observer(transition) }

    fileprivate func recordSignal(_ signal: Signal) {
        _ = signalWord.compareExchange(expected: 0, desired: signal.rawValue, ordering: .acquiringAndReleasing)
    }
}

/// The monitor: what the shutdown does on its own thread ("shutdown"). Everything here runs on that thread (the
/// tasks started by ``GracefulShutdown/start()`` and the thread's one-shot timer), so the thread sleeps, with
/// no timeout, until a signal arrives, draining starts from code, or a deadline it set is due.
private final class Monitor: Sendable {
    let shutdown: GracefulShutdown
    let thread: LifecycleThread

    private struct State {
        /// Whether the monitor started draining (reported it and set the deadline).
        var draining = false
        /// The signal that started it, for telling a duplicate from a second signal.
        var first: SignalEvent? = nil
    }

    /// Touched on the monitor thread only; the lock is what lets the compiler see that the class is Sendable.
    private let state = Mutex(State())

    init(shutdown: GracefulShutdown, thread: LifecycleThread) {
        self.shutdown = shutdown
        self.thread = thread
    }

    /// A delivery of one of the shutdown signals.
    func handle(_ event: SignalEvent) {
        let configuration = shutdown.configuration
        enum Meaning { case first, duplicate, second }
        let meaning = state.withLock { state -> Meaning in
            if !state.draining {
                state.draining = true
                state.first = event
                return .first
            }
            if let first = state.first, event.signal == first.signal, event.senderPID == first.senderPID,
                event.monotonicNanoseconds - first.monotonicNanoseconds < Monitor.nanoseconds(configuration.duplicateWindow)
            {
                return .duplicate
            }
            return .second
        }
        switch meaning {
        case .first:
            shutdown.recordSignal(event.signal)
            // Reported first, so that a log line saying why comes before anything the waiters do.
            shutdown.report(.draining(event.signal, deadline: configuration.deadline))
            shutdown.advance(to: .draining)
            startDeadline()
        case .duplicate:
            shutdown.report(.duplicateIgnored(event.signal, senderPID: event.senderPID))
        case .second:
            shutdown.report(.immediateExit(event.signal))
            configuration.exitMode.terminate(by: event.signal)
        }
    }

    /// The phase reached draining: by a signal (``handle(_:)`` did the work already) or from code.
    func drainingStarted() {
        let first = state.withLock { state -> Bool in
            if state.draining { return false }
            state.draining = true
            return true
        }
        guard first else { return }
        shutdown.report(.draining(shutdown.signal, deadline: shutdown.configuration.deadline))
        startDeadline()
    }

    private func startDeadline() {
        thread.setTimer(after: shutdown.configuration.deadline) { [self] in deadlinePassed() }
    }

    private func deadlinePassed() {
        let configuration = shutdown.configuration
        shutdown.advance(to: .cancelled)
        shutdown.report(.deadlinePassed(configuration.deadline))
        for handler in shutdown.takeCancelHandlers() { handler() }
        thread.setTimer(after: configuration.cancellationGrace) { [self] in graceOver() }
    }

    private func graceOver() {
        if let signal = shutdown.signal { shutdown.configuration.exitMode.terminate(by: signal) }
        fflush(nil)
        _exit(1)  // requested from code without a signal, and the work did not finish in time
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
