#if ServiceLifecycleIntegration
import SignalCore
import Synchronization

extension SignalEngine {
    /// The events of `signals` for one of this library's services: like ``SignalEngine/events(for:buffering:)``
    /// (the subscription makes the engine watch the signals, starting it when needed), but it refuses an engine
    /// that runs with manual delivery first, whose subscriptions never get an event: a service would wait for
    /// signals forever. On error nothing was watched.
    func serviceEvents(for signals: SignalSet) throws(SignalError) -> SignalEvents {
        if configuration?.delivery == .manual {
            throw .invalidConfiguration("the signal engine runs with manual delivery; lifecycle services need automatic")
        }
        return try events(for: signals)
    }
}

/// The subscription a service makes when it is made, so that its signals are caught from then on: a delivery
/// that comes before the group runs the service waits in the subscription (or, if the subscription could not be
/// made, the error waits) for the first ``take()``. Later calls subscribe anew.
final class ServiceSubscription: Sendable {
    let signals: SignalSet
    private let first: Mutex<Result<SignalEvents, SignalError>?>

    init(_ signals: SignalSet) {
        self.signals = signals
        first = Mutex(Result { () throws(SignalError) -> SignalEvents in
            try SignalEngine.shared.serviceEvents(for: signals)
        })
    }

    /// The subscription made at init the first time, a new one afterwards.
    func take() throws(SignalError) -> SignalEvents {
        let made = first.withLock { first in
            defer { first = nil }
            return first
        }
        if let made { return try made.get() }
        return try SignalEngine.shared.serviceEvents(for: signals)
    }
}
#endif
