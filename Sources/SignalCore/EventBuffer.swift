import CSignalShim

/// The events one subscription holds for its consumer, under its buffering policy.
///
/// Storage is one array with a read index; consumed slots are reclaimed when the buffer empties, or when they
/// make up half the array, so a consumer that never quite catches up does not make it grow without bound.
/// With back-pressure, the buffer tells the engine to hold its signals in the kernel when it reaches its limit
/// (csignal_hold) and to let them through again when the consumer took half (csignal_unhold). Not thread-safe:
/// its owner guards it with a lock.
struct EventBuffer {
    private var storage: [SignalEvent] = []
    private var head = 0
    let policy: SignalBuffering
    /// The signals this buffer's subscription receives: what a hold holds back.
    let signals: UInt64
    /// Events the policy dropped.
    private(set) var dropped: UInt64 = 0
    /// Whether this buffer holds its signals in the kernel now.
    private(set) var holding = false

    init(policy: SignalBuffering, signals: UInt64) {
        self.policy = policy
        self.signals = signals
        storage.reserveCapacity(Swift.min(policy.limit, 64))
    }

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    /// Slots the array holds now, consumed ones included (for tests of the reclaiming).
    var slotsInUse: Int { storage.count }

    /// Appends `event` as the policy says. Returns whether it was kept.
    @discardableResult
    mutating func append(_ event: SignalEvent) -> Bool {
        switch policy {
        case .backPressure(let limit):
            store(event)
            if !holding, count >= Swift.max(1, limit) {
                holding = true
                csignal_hold(signals)
            }
            return true
        case .bufferingOldest(let limit):
            if count >= Swift.max(1, limit) {
                dropped += 1
                return false
            }
            store(event)
            return true
        case .bufferingNewest(let limit):
            if count >= Swift.max(1, limit) {
                head += 1
                dropped += 1
            }
            store(event)
            return true
        }
    }

    private mutating func store(_ event: SignalEvent) {
        if head > 0, head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        storage.append(event)
    }

    mutating func popFirst() -> SignalEvent? {
        guard head < storage.count else { return nil }
        let event = storage[head]
        head += 1
        if holding, count <= policy.limit / 2 { releaseHold() }
        return event
    }

    /// Up to `max` waiting events, oldest first.
    mutating func removeFirst(_ max: Int) -> [SignalEvent] {
        if max >= count { return removeAll() }
        var events: [SignalEvent] = []
        events.reserveCapacity(max)
        while events.count < max, let event = popFirst() { events.append(event) }
        return events
    }

    /// Everything waiting, oldest first; the buffer is empty afterwards.
    mutating func removeAll() -> [SignalEvent] {
        let events = Array(storage[head...])
        storage.removeAll(keepingCapacity: true)
        head = 0
        if holding { releaseHold() }
        return events
    }

    /// Lets the signals through again (the consumer caught up, or the subscription ends).
    mutating func releaseHold() {
        guard holding else { return }
        holding = false
        csignal_unhold(signals)
    }
}
