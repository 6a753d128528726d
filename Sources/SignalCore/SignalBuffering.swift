/// What a subscription does when its consumer falls behind: hold signals back in the kernel (the default), or
/// drop events and count them, like `AsyncStream`'s buffering policies.
public enum SignalBuffering: Sendable, Hashable, CustomStringConvertible {
    /// Keeps every event. Once `limit` events wait, the engine stops taking this subscription's signals from the
    /// kernel until the consumer has taken half of them: real-time signals then wait in the kernel's queue
    /// (where a sender's `sigqueue` fails with `EAGAIN` when it is full, so the loss is visible to the sender),
    /// and standard signals coalesce there as the kernel always does. Signals no full subscription waits for
    /// are not held up. Events already taken from the kernel when the limit is reached are still kept, so the
    /// buffer can hold a batch (at most the configuration's batch limit, 64 by default) more than `limit`.
    ///
    /// The price: a signal held back is held back for every subscription of it, and for the counters. One
    /// slow consumer of SIGRTMIN+1 delays SIGRTMIN+1 for all its subscribers, and nothing else.
    case backPressure(limit: Int)
    /// Keeps the oldest `limit` events; newer ones are dropped and counted in `droppedEvents`.
    case bufferingOldest(Int)
    /// Keeps the newest `limit` events; older ones are dropped and counted in `droppedEvents`.
    case bufferingNewest(Int)

    /// `.backPressure(limit: 4096)`: nothing is lost.
    public static let `default` = SignalBuffering.backPressure(limit: 4096)

    /// The number of events the buffer holds before the policy acts (at least 1).
    public var limit: Int {
        switch self {
        case .backPressure(let limit), .bufferingOldest(let limit), .bufferingNewest(let limit): return Swift.max(1, limit)
        }
    }

    /// "backPressure(limit: 4096)".
    public var description: String {
        switch self {
        case .backPressure(let limit): return "backPressure(limit: \(limit))"
        case .bufferingOldest(let limit): return "bufferingOldest(\(limit))"
        case .bufferingNewest(let limit): return "bufferingNewest(\(limit))"
        }
    }
}
