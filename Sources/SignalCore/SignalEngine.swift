import CSignalShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's signal engine: one C recorder fed by a dedicated wait thread and a fallback handler.
///
/// Signal state is process-global, so there is exactly one engine: ``shared``. Start it once with the signals
/// to watch; then poll counters (``poller(for:)``), await events (``events(for:bufferingLimit:)``), or wait
/// with a timeout (``subscribe(to:bufferingLimit:)``). None of your Swift code ever runs in signal-handler
/// context: the C recorder records, and the wait thread (an ordinary thread) hands records to Swift.
public final class SignalEngine: Sendable {
    /// The engine of this process.
    public static let shared = SignalEngine()

    /// How the engine records and hands over deliveries.
    public struct Configuration: Sendable, Hashable {
        /// How records reach Swift.
        public enum Delivery: Sendable, Hashable {
            /// The wait thread drains the ring after each batch and feeds every subscription.
            case automatic
            /// Records stay in the ring until ``SignalEngine/drain(max:)`` takes them; subscriptions get
            /// nothing. Counters and pollers work the same.
            case manual
        }

        /// Records the ring holds before further deliveries are counted as dropped: a power of two,
        /// 2...65 536.
        public var ringCapacity: Int
        /// Deliveries the wait thread takes before it hands a batch to Swift (1...4096).
        public var batchLimit: Int
        /// How records reach Swift. Default: ``Delivery-swift.enum/automatic``.
        public var delivery: Delivery

        /// Makes a configuration; the defaults suit almost every program.
        ///
        /// - Parameters:
        ///   - ringCapacity: Records the ring holds (a power of two, 2...65 536). Default 8192.
        ///   - batchLimit: Deliveries per batch handed to Swift (1...4096). Default 64.
        ///   - delivery: ``Delivery-swift.enum/automatic`` (default) or ``Delivery-swift.enum/manual``.
        public init(ringCapacity: Int = 8192, batchLimit: Int = 64, delivery: Delivery = .automatic) {
            self.ringCapacity = ringCapacity
            self.batchLimit = batchLimit
            self.delivery = delivery
        }

        func validate() throws(SignalError) {
            guard ringCapacity >= 2, ringCapacity <= Int(CSIGNAL_RING_MAX_CAPACITY), ringCapacity.nonzeroBitCount == 1
            else { throw .invalidConfiguration("ringCapacity must be a power of two in 2...65536, not \(ringCapacity)") }
            guard (1...4096).contains(batchLimit)
            else { throw .invalidConfiguration("batchLimit must be in 1...4096, not \(batchLimit)") }
        }
    }

    struct Subscriber {
        let id: UInt64
        let mask: UInt64
        let sink: Sink
    }

    enum Sink {
        case stream(EventChannel)
        case queue(SignalSubscription)
    }

    struct State {
        var nextID: UInt64 = 1
        var subscribers: [Subscriber] = []
    }

    /// Serialises start, stop, watch and unwatch. Never held while the wait thread needs `state`.
    private let setup = Mutex<Configuration?>(nil)
    /// Subscribers; held by the wait thread while it hands a batch over.
    private let state = Mutex(State())
    /// Records popped from the ring in one go; used only with `state` held.
    private nonisolated(unsafe) let scratch: UnsafeMutablePointer<csignal_record>
    private static let scratchCount = 256

    /// Runs tasks that prefer it on the wait thread: the lowest-latency way to await signals.
    /// See ``WaitThreadExecutor``.
    public let executor: WaitThreadExecutor

    private init() {
        scratch = .allocate(capacity: SignalEngine.scratchCount)
        executor = WaitThreadExecutor()
    }

    // MARK: Lifecycle

    /// Starts the engine and watches `signals`.
    ///
    /// Blocks the signals in every thread of the process (not only threads created later), installs the fallback
    /// handler, and starts the wait thread "signalcore". Validates every signal first: on any error nothing has
    /// changed.
    public func start(watching signals: SignalSet, configuration: Configuration = Configuration()) throws(SignalError) {
        try configuration.validate()
        try signals.validateWatchable()
        try setup.withLock { (current: inout Configuration?) throws(SignalError) in
            if current != nil || csignal_engine_running() { throw .alreadyRunning }
            var options = csignal_start_options()
            options.ring_capacity = UInt32(configuration.ringCapacity)
            options.batch_limit = UInt32(configuration.batchLimit)
            options.notify = { context in
                Unmanaged<SignalEngine>.fromOpaque(context!).takeUnretainedValue().waitThreadNotified()
            }
            options.notify_context = Unmanaged.passUnretained(self).toOpaque()
            automaticDelivery.store(configuration.delivery == .automatic, ordering: .releasing)
            var failed: UnsafePointer<CChar>? = nil
            var err = csignal_engine_start(&options, &failed)
            if err == EALREADY { throw .alreadyRunning }
            if err != 0 { throw .system(call: String(cString: failed!), errno: err) }
            err = csignal_engine_watch(signals.mask, &failed)
            if err != 0 {
                var ignored: UnsafePointer<CChar>? = nil
                _ = csignal_engine_stop(&ignored)
                throw .system(call: String(cString: failed!), errno: err)
            }
            current = configuration
            executor.open()
        }
    }

    /// Stops the engine: restores every watched signal's previous disposition and the threads' masks, then
    /// stops and joins the wait thread. Records still in the ring are handed to subscriptions first; then
    /// every subscription ends. A delivery still pending in the kernel meets the restored disposition.
    ///
    /// Throws `system(call: "csignal_engine_stop", errno: EDEADLK)` when called by the thread that holds the wait
    /// role (a task running on ``executor``): the wait thread cannot wait for itself.
    public func stop() throws(SignalError) {
        try refuseOnWaitRole("csignal_engine_stop")
        try setup.withLock { (current: inout Configuration?) throws(SignalError) in
            guard let configuration = current else { throw .notRunning }
            var failed: UnsafePointer<CChar>? = nil
            let err = csignal_engine_stop(&failed)
            if err != 0 { throw .system(call: String(cString: failed!), errno: err) }
            current = nil
            executor.close()
            if configuration.delivery == .automatic { pump() }
            let ended = state.withLock { state in
                let all = state.subscribers
                state.subscribers.removeAll()
                return all
            }
            for subscriber in ended { subscriber.sink.finish() }
        }
    }

    /// Setup waits for the wait thread's acknowledgement, so the thread holding the wait role cannot do it.
    private func refuseOnWaitRole(_ call: String) throws(SignalError) {
        if csignal_on_wait_thread() { throw .system(call: call, errno: EDEADLK) }
    }

    /// Adds signals to a running engine. Not from a task running on ``executor`` (EDEADLK).
    public func watch(_ signals: SignalSet) throws(SignalError) {
        try refuseOnWaitRole("csignal_engine_watch")
        try signals.validateWatchable()
        try setup.withLock { (current: inout Configuration?) throws(SignalError) in
            guard current != nil else { throw .notRunning }
            var failed: UnsafePointer<CChar>? = nil
            let err = csignal_engine_watch(signals.mask, &failed)
            if err != 0 { throw .system(call: String(cString: failed!), errno: err) }
        }
    }

    /// Stops watching signals: restores each one's previous disposition and unblocks it again.
    /// Not from a task running on ``executor`` (EDEADLK).
    public func unwatch(_ signals: SignalSet) throws(SignalError) {
        try refuseOnWaitRole("csignal_engine_unwatch")
        if let number = signals.rejectedNumber { throw .outOfRange(number) }
        try setup.withLock { (current: inout Configuration?) throws(SignalError) in
            guard current != nil else { throw .notRunning }
            var failed: UnsafePointer<CChar>? = nil
            let err = csignal_engine_unwatch(signals.mask, &failed)
            if err != 0 { throw .system(call: String(cString: failed!), errno: err) }
        }
    }

    /// Whether the engine runs (between a successful ``start(watching:configuration:)`` and ``stop()``).
    public var isRunning: Bool { csignal_engine_running() }

    /// The signals the engine watches now.
    public var watchedSignals: SignalSet { SignalSet(mask: csignal_engine_watched()) }

    /// The configuration the engine runs with, or nil when it is stopped.
    public var configuration: Configuration? { setup.withLock { $0 } }

    /// Kernel thread id of the wait thread, or nil when the engine is stopped.
    public var waitThreadID: CInt? {
        let tid = csignal_engine_waiter_tid()
        return tid > 0 ? tid : nil
    }

    // MARK: Counters and records

    /// The recorder's counters for `signal`.
    public func counts(for signal: Signal) -> SignalCounts {
        SignalCounts(csignal_get_counts(signal.rawValue))
    }

    /// A poller that reports deliveries of `signal` made after this call.
    public func poller(for signal: Signal) -> SignalPoller { SignalPoller(signal) }

    /// Records dropped because the ring was full, all signals together, for the life of the process.
    public var droppedRecords: UInt64 { csignal_ring_dropped_total() }

    /// Takes up to `max` records out of the ring, oldest first. With ``Configuration/Delivery/manual`` this is
    /// how records are read; with automatic delivery the wait thread usually got there first.
    public func drain(max: Int = .max) -> [SignalEvent] {
        state.withLock { _ in
            var events: [SignalEvent] = []
            while events.count < max {
                let want = UInt32(Swift.min(SignalEngine.scratchCount, max - events.count))
                let n = Int(csignal_ring_pop(scratch, want))
                if n == 0 { break }
                for i in 0..<n { events.append(SignalEvent(scratch[i])) }
            }
            return events
        }
    }

    /// Whether the wait thread hands records to subscriptions (automatic delivery).
    private let automaticDelivery = Atomic<Bool>(false)

    /// Whether the role holder hands records to subscriptions (automatic delivery while running).
    var deliversAutomatically: Bool { automaticDelivery.load(ordering: .acquiring) }

    /// The role holder's call after each batch: the wait thread, or a thread that borrowed its role in
    /// ``SignalSubscription/next(timeout:)``. Ordinary thread context, never a signal handler.
    func waitThreadNotified() {
        if automaticDelivery.load(ordering: .acquiring) { pump() }
        executor.runQueued()
    }

    /// Hands every record in the ring to the subscriptions whose set contains its signal.
    /// Runs on the wait thread (through the notify callback), never in a signal handler.
    func pump() {
        state.withLock { state in
            while true {
                let n = Int(csignal_ring_pop(scratch, UInt32(SignalEngine.scratchCount)))
                if n == 0 { break }
                for i in 0..<n {
                    let record = scratch[i]
                    let bit = SignalSet.bit(Signal(record.signo))
                    var event: SignalEvent? = nil
                    for subscriber in state.subscribers where subscriber.mask & bit != 0 {
                        if event == nil { event = SignalEvent(record) }
                        subscriber.sink.deliver(event!)
                    }
                }
            }
        }
    }

    // MARK: Subscriptions

    /// An asynchronous sequence of the deliveries of `signals` made from now on.
    ///
    /// Each call makes an independent subscription that sees every event of its set. It ends when the task
    /// iterating it is cancelled, when it is dropped, or when the engine stops. At most `bufferingLimit` events
    /// wait for the consumer; further ones are counted in ``SignalEvents/droppedEvents`` (the engine's counters
    /// stay exact).
    public func events(for signals: SignalSet, bufferingLimit: Int = 4096) -> SignalEvents {
        let channel = EventChannel(limit: Swift.max(1, bufferingLimit))
        let id = add(mask: signals.mask, sink: .stream(channel))
        channel.setCancelAction { [weak self] in self?.remove(id: id) }
        let lifetime = SubscriptionLifetime { [weak self] in self?.remove(id: id) }
        return SignalEvents(channel: channel, lifetime: lifetime)
    }

    /// A subscription for code that is not async: wait with a timeout, or drain in batches.
    /// Cancel it (``SignalSubscription/cancel()``) when done; it also ends when the engine stops.
    public func subscribe(to signals: SignalSet, bufferingLimit: Int = 4096) -> SignalSubscription {
        let subscription = SignalSubscription(signals: signals, limit: Swift.max(1, bufferingLimit), engine: self)
        subscription.id = add(mask: signals.mask, sink: .queue(subscription))
        return subscription
    }

    /// Waits up to `timeout` for the next delivery of one of `signals` made after this call.
    /// Returns nil on timeout. For several waits in a row without missing anything in between, keep a
    /// ``SignalSubscription``.
    public func wait(for signals: SignalSet, timeout: Duration) -> SignalEvent? {
        let subscription = subscribe(to: signals, bufferingLimit: 16)
        defer { subscription.cancel() }
        return subscription.next(timeout: timeout)
    }

    /// Subscriptions alive now (async sequences and blocking subscriptions).
    public var subscriptionCount: Int { state.withLock { $0.subscribers.count } }

    private func add(mask: UInt64, sink: Sink) -> UInt64 {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.subscribers.append(Subscriber(id: id, mask: mask, sink: sink))
            return id
        }
    }

    func remove(id: UInt64) {
        let removed = state.withLock { state -> Subscriber? in
            guard let index = state.subscribers.firstIndex(where: { $0.id == id }) else { return nil }
            return state.subscribers.remove(at: index)
        }
        removed?.sink.finish()
    }

    // MARK: Audit

    /// Every thread of the process with its mask, and whether it blocks the watched signals.
    public func auditThreads() throws(SignalError) -> [ThreadMaskReport] {
        var capacity = 256
        while true {
            var reports = [csignal_thread_report](repeating: csignal_thread_report(), count: capacity)
            let found = Int(csignal_audit(&reports, CInt(capacity)))
            if found < 0 { throw .system(call: "opendir(/proc/self/task)", errno: CInt(-found)) }
            if found <= capacity {
                let watched = watchedSignals
                return reports.prefix(found).map { ThreadMaskReport($0, watched: watched) }
            }
            capacity = found + 64
        }
    }

    /// What the most recent mask change found: passes over the thread list, threads signalled, threads that
    /// could not be reached (they block the internal signal) and threads that did not answer in time.
    public var lastMaskSpread: (passes: Int, signalled: Int, unreachable: Int, timedOut: Int) {
        let r = csignal_last_spread()
        return (Int(r.passes), Int(r.signalled), Int(r.unreachable), Int(r.timed_out))
    }
}

extension SignalEngine.Sink {
    func deliver(_ event: SignalEvent) {
        switch self {
        case .stream(let channel):
            channel.deliver(event)
        case .queue(let subscription):
            subscription.enqueue(event)
        }
    }

    func finish() {
        switch self {
        case .stream(let channel): channel.finish()
        case .queue(let subscription): subscription.close()
        }
    }
}
