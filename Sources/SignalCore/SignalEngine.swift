import CSignalShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's signal engine: one C recorder fed by the thread that holds the wait role and by a fallback
/// handler.
///
/// Signal state is process-global, so there is exactly one engine: ``shared``. You rarely start it yourself:
/// asking for events, a subscription, a poller or a wait on a signal makes the engine watch that signal,
/// starting the engine when needed. Components that know nothing of each other subscribe independently; none
/// has to coordinate with another.
///
/// **The claim rule.** A subscription claims its signals while it lives. Releasing the last claim of a signal
/// changes nothing in the process: the signal stays caught (counted, recorded, handed to nobody) until the
/// program calls ``unwatch(_:)`` or ``stop()``. So a signal a service was handling never turns fatal while the
/// process winds down: a SIGHUP that arrives after the reload service ended is counted, not the end of the
/// process.
///
/// None of your Swift code ever runs in signal-handler context: the C recorder records, and an ordinary thread
/// hands the records to Swift.
public final class SignalEngine: Sendable {
    /// The engine of this process.
    public static let shared = SignalEngine()

    struct Subscriber {
        let id: UInt64
        let mask: UInt64
        let sink: Sink
    }

    enum Sink {
        case stream(EventChannel)
        case queue(SignalSubscription)
    }

    struct Subscribers {
        var nextID: UInt64 = 1
        var list: [Subscriber] = []
    }

    /// What setup owns: the configuration the engine runs with.
    struct Setup {
        var configuration: Configuration? = nil
    }

    /// Serialises start, stop, watch, unwatch and the start of claims. Never held while the role holder needs
    /// `subscribers`, and never needed by the role holder: a claim's release (which may happen on any thread,
    /// the wait thread included) takes only `claims`.
    private let setup = Mutex(Setup())
    /// Live subscriptions per signal, and the signals an unwatch is taking away right now. A claim of signals
    /// that are watched already only counts here, without the setup lock, so that subscribing stays cheap and
    /// works from the wait thread even while another thread's setup waits for that thread.
    struct Claims {
        var counts = [Int](repeating: 0, count: Int(CSIGNAL_SLOTS))
        var unwatching: UInt64 = 0
    }
    private let claims = Mutex(Claims())
    /// Subscribers; held by the role holder while it hands a batch over.
    private let subscribers = Mutex(Subscribers())
    /// Records popped from the ring in one go; used only with `subscribers` held.
    private nonisolated(unsafe) let scratch: UnsafeMutablePointer<csignal_record>
    private static let scratchCount = 256
    /// Whether the role holder hands records to subscriptions (automatic delivery while running).
    private let automaticDelivery = Atomic<Bool>(false)

    /// Runs tasks that prefer it on the wait thread: the lowest-latency way to await signals.
    /// See ``WaitThreadExecutor``.
    public let executor: WaitThreadExecutor

    private init() {
        scratch = .allocate(capacity: SignalEngine.scratchCount)
        executor = WaitThreadExecutor()
    }

    // MARK: Lifecycle

    /// Starts the engine with `configuration` and watches `signals` (which may be empty).
    ///
    /// Only needed to choose a configuration: every subscribing call starts the engine with the default one.
    /// Validates everything first: on any error nothing has changed. Throws ``SignalError/alreadyRunning`` when
    /// the engine runs already (started by this call earlier, or by a subscription).
    public func start(watching signals: SignalSet = [], configuration: Configuration = Configuration()) throws(SignalError) {
        try configuration.validate()
        try signals.validateWatchable()
        try setup.withLock { (setup: inout Setup) throws(SignalError) in
            if setup.configuration != nil || csignal_engine_running() { throw .alreadyRunning }
            try startLocked(&setup, configuration: configuration, avoiding: signals)
            try watchLocked(signals)
        }
    }

    /// Stops the engine: restores every watched signal's previous disposition and each thread's own mask, then
    /// stops and joins the wait thread. Records still in the ring are handed to subscriptions first; then
    /// every subscription ends. A delivery still pending in the kernel meets the restored disposition. A later
    /// subscription starts the engine again.
    ///
    /// Throws ``SignalError/calledOnWaitThread`` when called on the wait thread (a task running on
    /// ``executor``), which cannot wait for itself.
    public func stop() throws(SignalError) {
        try refuseOnWaitRole()
        try setup.withLock { (setup: inout Setup) throws(SignalError) in
            guard let configuration = setup.configuration else { throw .notRunning }
            var status = csignal_status()
            csignal_engine_stop(&status)
            if status.code != CSIGNAL_OK { throw SignalEngine.error(status) }
            setup.configuration = nil
            claims.withLock { $0 = Claims() }
            automaticDelivery.store(false, ordering: .releasing)
            executor.close()
            if configuration.delivery == .automatic { pump() }
            let ended = subscribers.withLock { state in
                let all = state.list
                state.list.removeAll()
                return all
            }
            for subscriber in ended { subscriber.sink.finish() }
        }
    }

    /// Watches `signals` from now on, starting the engine when needed, until ``unwatch(_:)`` or ``stop()``.
    /// Not needed before subscribing (a subscription watches what it asks for); useful to catch a signal that
    /// nothing subscribes to yet.
    public func watch(_ signals: SignalSet) throws(SignalError) {
        try signals.validateWatchable()
        try setup.withLock { (setup: inout Setup) throws(SignalError) in
            if setup.configuration == nil { try startLocked(&setup, configuration: Configuration(), avoiding: signals) }
            try watchLocked(signals)
        }
    }

    /// Stops watching `signals`: restores each one's previous disposition and each thread's own mask for it.
    /// Throws ``SignalError/stillClaimed(_:)`` while a subscription receives one of them (cancel it first).
    public func unwatch(_ signals: SignalSet) throws(SignalError) {
        if let number = signals.rejectedNumber { throw .outOfRange(number) }
        try setup.withLock { (setup: inout Setup) throws(SignalError) in
            guard setup.configuration != nil else { throw .notRunning }
            let claimed = claims.withLock { claims -> Signal? in
                if let claimed = signals.first(where: { claims.counts[Int($0.rawValue)] > 0 }) { return claimed }
                claims.unwatching = signals.mask
                return nil
            }
            if let claimed { throw .stillClaimed(claimed) }
            defer { claims.withLock { $0.unwatching = 0 } }
            var status = csignal_status()
            csignal_engine_unwatch(signals.mask, &status)
            if status.code != CSIGNAL_OK { throw SignalEngine.error(status) }
        }
    }

    /// Whether the engine runs.
    public var isRunning: Bool { csignal_engine_running() }

    /// The signals the engine watches now.
    public var watchedSignals: SignalSet { SignalSet(mask: csignal_engine_watched()) }

    /// The configuration the engine runs with, or nil when it is stopped.
    public var configuration: Configuration? { setup.withLock { $0.configuration } }

    /// Kernel thread id of the wait thread, or nil when the engine is stopped.
    public var waitThreadID: CInt? {
        let tid = csignal_engine_waiter_tid()
        return tid > 0 ? tid : nil
    }

    /// What the most recent change of the threads' masks found.
    public var lastMaskSpread: MaskSpreadReport { MaskSpreadReport(csignal_last_spread()) }

    /// Stop waits for the wait thread to exit, so that thread cannot do it. (Watching from a task on the
    /// ``executor`` works: the wait thread applies its own part of the change itself.)
    private func refuseOnWaitRole() throws(SignalError) {
        if csignal_holds_role() { throw .calledOnWaitThread }
    }

    private func startLocked(_ setup: inout Setup, configuration: Configuration, avoiding signals: SignalSet) throws(SignalError) {
        var options = csignal_start_options()
        options.avoid = signals.mask
        options.ring_capacity = UInt32(configuration.ringCapacity)
        options.batch_limit = UInt32(configuration.batchLimit)
        if configuration.delivery == .automatic {
            options.pump = { context in
                Unmanaged<SignalEngine>.fromOpaque(context!).takeUnretainedValue().pump()
            }
        }
        options.run_jobs = { context in
            Unmanaged<SignalEngine>.fromOpaque(context!).takeUnretainedValue().executor.runQueued()
        }
        options.context = Unmanaged.passUnretained(self).toOpaque()
        automaticDelivery.store(configuration.delivery == .automatic, ordering: .releasing)
        var status = csignal_status()
        csignal_engine_start(&options, &status)
        if status.code != CSIGNAL_OK {
            automaticDelivery.store(false, ordering: .releasing)
            throw SignalEngine.error(status)
        }
        setup.configuration = configuration
        executor.open()
    }

    private func watchLocked(_ signals: SignalSet) throws(SignalError) {
        var status = csignal_status()
        csignal_engine_watch(signals.mask, &status)
        if status.code != CSIGNAL_OK { throw SignalEngine.error(status) }
    }

    /// Makes sure the engine watches `signals` and counts a claim on each.
    private func claim(_ signals: SignalSet) throws(SignalError) {
        try signals.validateWatchable()
        let counted = claims.withLock { claims -> Bool in
            // Watched already, and no unwatch under way: count it, nothing else to do.
            guard csignal_engine_running(), csignal_engine_watched() & signals.mask == signals.mask,
                claims.unwatching & signals.mask == 0
            else { return false }
            for signal in signals { claims.counts[Int(signal.rawValue)] += 1 }
            return true
        }
        if counted { return }
        try setup.withLock { (setup: inout Setup) throws(SignalError) in
            if setup.configuration == nil { try startLocked(&setup, configuration: Configuration(), avoiding: signals) }
            try watchLocked(signals)
            claims.withLock { claims in for signal in signals { claims.counts[Int(signal.rawValue)] += 1 } }
        }
    }

    /// Ends one claim on each of `signals`. The signals stay watched (see the claim rule above).
    private func release(_ signals: SignalSet) {
        claims.withLock { claims in
            for signal in signals where claims.counts[Int(signal.rawValue)] > 0 { claims.counts[Int(signal.rawValue)] -= 1 }
        }
    }

    /// Runs `body` with the setup lock held: nothing can watch or unwatch meanwhile.
    func withSetupLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try setup.withLock { (_: inout Setup) throws(E) in try body() }
    }

    /// The error a C setup call reported.
    static func error(_ status: csignal_status) -> SignalError {
        switch status.code {
        case CInt(CSIGNAL_E_SYSTEM):
            return .system(call: status.call.map { String(cString: $0) } ?? "unknown", errno: status.err)
        case CInt(CSIGNAL_E_ALREADY_RUNNING): return .alreadyRunning
        case CInt(CSIGNAL_E_NOT_RUNNING): return .notRunning
        case CInt(CSIGNAL_E_WAIT_THREAD_BUSY): return .waitThreadBusy
        case CInt(CSIGNAL_E_NO_INTERNAL_SIGNAL): return .noInternalSignal
        case CInt(CSIGNAL_E_INTERNAL_TAKEN): return .internalSignalTaken(Signal(status.signo))
        case CInt(CSIGNAL_E_UNREACHABLE_THREAD):
            return .unreachableThread(threadID: status.tid, signal: Signal(status.signo))
        case CInt(CSIGNAL_E_THREAD_TIMEOUT): return .threadDidNotAnswer(threadID: status.tid)
        case CInt(CSIGNAL_E_ON_WAIT_THREAD): return .calledOnWaitThread
        default:
            if status.signo != 0 {
                do throws(SignalError) {
                    try Signal(status.signo).validateWatchable()
                } catch {
                    return error
                }
            }
            return .invalidConfiguration("the engine refused the request")
        }
    }

    // MARK: Counters and records

    /// The recorder's counters for `signal`.
    public func counts(for signal: Signal) -> SignalCounts {
        SignalCounts(csignal_get_counts(signal.rawValue))
    }

    /// A poller that reports deliveries of `signal` made after this call. Makes the engine watch `signal`
    /// (starting it when needed), until ``unwatch(_:)`` or ``stop()``.
    public func poller(for signal: Signal) throws(SignalError) -> SignalPoller {
        try watch([signal])
        return SignalPoller(signal)
    }

    /// Records dropped because the ring was full, all signals together, for the life of the process.
    public var droppedRecords: UInt64 { csignal_ring_dropped_total() }

    /// Takes up to `max` records out of the ring, oldest first: with ``Configuration/Delivery/manual`` this is
    /// how records are read (with automatic delivery the role holder usually got there first). A subscription's
    /// own ``SignalSubscription/drain(max:)`` takes what was handed to it.
    public func drain(max: Int = .max) -> [SignalEvent] {
        let events = subscribers.withLock { _ in
            var events: [SignalEvent] = []
            while events.count < max {
                let want = UInt32(Swift.min(SignalEngine.scratchCount, max - events.count))
                let n = Int(csignal_ring_pop(scratch, want))
                if n == 0 { break }
                for i in 0..<n { events.append(SignalEvent(scratch[i])) }
            }
            return events
        }
        // The role holder stops taking signals while the ring has no room for a batch: tell it there is room.
        if !events.isEmpty { csignal_engine_wake_holder() }
        return events
    }

    /// Whether the role holder hands records to subscriptions (automatic delivery while running).
    var deliversAutomatically: Bool { automaticDelivery.load(ordering: .acquiring) }

    /// Hands every record in the ring to the subscriptions whose set contains its signal. Runs on the thread
    /// that holds the wait role (the wait thread, or a borrower in ``SignalSubscription/next(timeout:)``),
    /// never in a signal handler.
    func pump() {
        subscribers.withLock { state in
            while true {
                let n = Int(csignal_ring_pop(scratch, UInt32(SignalEngine.scratchCount)))
                if n == 0 { break }
                for i in 0..<n {
                    let record = scratch[i]
                    let bit = SignalSet.bit(Signal(record.signo))
                    var event: SignalEvent? = nil
                    for subscriber in state.list where subscriber.mask & bit != 0 {
                        if event == nil { event = SignalEvent(record) }
                        subscriber.sink.deliver(event!)
                    }
                }
            }
        }
    }

    // MARK: Subscriptions

    /// An asynchronous sequence of the deliveries of `signals` made from now on. Makes the engine watch them,
    /// starting it when needed.
    ///
    /// Each call makes an independent subscription that sees every event of its set, in the order the kernel
    /// handed them out (per sender, for real-time signals). It ends when the task iterating it is cancelled,
    /// when it is dropped, or when the engine stops. With the default buffering nothing is lost: while the
    /// consumer is behind, the signals wait in the kernel (see ``SignalBuffering``).
    ///
    /// Throws for a signal that cannot be watched (uncatchable, synchronous, reserved, out of range), or when the
    /// engine cannot start or watch; then nothing changed.
    public func events(for signals: SignalSet, buffering: SignalBuffering = .default) throws(SignalError) -> SignalEvents {
        let channel = EventChannel(buffering: buffering, signals: signals)
        let id = add(mask: signals.mask, sink: .stream(channel))
        do {
            try claim(signals)
        } catch {
            removeSubscriber(id: id)
            throw error
        }
        channel.setCancelAction { [weak self] in self?.remove(id: id) }
        let lifetime = SubscriptionLifetime { [weak self] in self?.remove(id: id) }
        return SignalEvents(channel: channel, lifetime: lifetime)
    }

    /// A subscription for code that is not async: wait with a timeout, or drain in batches. Makes the engine
    /// watch `signals`, starting it when needed. Cancel it (``SignalSubscription/cancel()``) when done; it also
    /// ends when the engine stops. Throws as ``events(for:buffering:)`` does.
    public func subscription(for signals: SignalSet, buffering: SignalBuffering = .default) throws(SignalError) -> SignalSubscription {
        let subscription = SignalSubscription(signals: signals, buffering: buffering, engine: self)
        subscription.id = add(mask: signals.mask, sink: .queue(subscription))
        do {
            try claim(signals)
        } catch {
            removeSubscriber(id: subscription.id)
            throw error
        }
        return subscription
    }

    /// Waits up to `timeout` for the next delivery of one of `signals` made after this call; nil on timeout.
    /// Makes the engine watch `signals`, starting it when needed. For several waits in a row without missing
    /// anything in between, keep a ``SignalSubscription``.
    public func wait(for signals: SignalSet, timeout: Duration) throws(SignalError) -> SignalEvent? {
        let subscription = try self.subscription(for: signals)
        defer { subscription.cancel() }
        return subscription.next(timeout: timeout)
    }

    /// Subscriptions alive now (async sequences and blocking subscriptions).
    public var subscriptionCount: Int { subscribers.withLock { $0.list.count } }

    private func add(mask: UInt64, sink: Sink) -> UInt64 {
        subscribers.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.list.append(Subscriber(id: id, mask: mask, sink: sink))
            return id
        }
    }

    /// Takes a subscriber out without touching claims (its claim never happened).
    private func removeSubscriber(id: UInt64) {
        let removed = subscribers.withLock { state -> Subscriber? in
            guard let index = state.list.firstIndex(where: { $0.id == id }) else { return nil }
            return state.list.remove(at: index)
        }
        removed?.sink.finish()
    }

    /// Ends a subscription: no more events, and its claim is released.
    func remove(id: UInt64) {
        let removed = subscribers.withLock { state -> Subscriber? in
            guard let index = state.list.firstIndex(where: { $0.id == id }) else { return nil }
            return state.list.remove(at: index)
        }
        guard let removed else { return }
        removed.sink.finish()
        release(SignalSet(mask: removed.mask))
    }
}

extension SignalEngine.Sink {
    func deliver(_ event: SignalEvent) {
        switch self {
        case .stream(let channel): channel.deliver(event)
        case .queue(let subscription): subscription.enqueue(event)
        }
    }

    func finish() {
        switch self {
        case .stream(let channel): channel.finish()
        case .queue(let subscription): subscription.close()
        }
    }
}
