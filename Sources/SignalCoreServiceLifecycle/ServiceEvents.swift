#if ServiceLifecycleIntegration
import SignalCore

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
#endif
