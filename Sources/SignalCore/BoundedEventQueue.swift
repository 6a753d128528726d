/// A first-in first-out buffer of events that holds at most `limit` of them and counts what it had to refuse.
///
/// Storage is one array with a read index; consumed slots are reclaimed when the queue empties, or when they
/// make up half the array, so a consumer that never quite catches up does not make it grow without bound.
struct BoundedEventQueue {
    private var storage: [SignalEvent] = []
    private var head = 0
    let limit: Int
    /// Events refused because `limit` were waiting.
    private(set) var dropped: UInt64 = 0

    init(limit: Int) {
        self.limit = Swift.max(1, limit)
        storage.reserveCapacity(Swift.min(self.limit, 64))
    }

    var isEmpty: Bool { head == storage.count }
    /// Slots the array holds now, consumed ones included (for tests of the reclaiming).
    var slotsInUse: Int { storage.count }
    var count: Int { storage.count - head }

    /// Appends `event`, or counts it as dropped when the queue is full. Returns whether it was kept.
    @discardableResult
    mutating func append(_ event: SignalEvent) -> Bool {
        if count >= limit {
            dropped += 1
            return false
        }
        if head > 0, head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        storage.append(event)
        return true
    }

    mutating func popFirst() -> SignalEvent? {
        guard head < storage.count else { return nil }
        let event = storage[head]
        head += 1
        return event
    }

    /// Everything waiting, oldest first; the queue is empty afterwards.
    mutating func removeAll() -> [SignalEvent] {
        let events = Array(storage[head...])
        storage.removeAll(keepingCapacity: true)
        head = 0
        return events
    }
}
