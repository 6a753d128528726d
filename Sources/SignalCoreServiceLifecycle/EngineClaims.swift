#if ServiceLifecycleIntegration
import SignalCore
import Synchronization

/// Reference-counted claims on the signals the shared engine watches, so that several services in one process
/// (a shutdown service and a reload service, say) can each ask for their signals and give them back without
/// taking a signal away from another.
///
/// A claim starts the engine if it is not running, and watches the signals nobody watched yet. Releasing the
/// last claim on a signal unwatches it only if a claim added it: signals the application watched itself are
/// left alone. The engine is never stopped here: other code in the process may be using it.
final class EngineClaims: Sendable {
    static let shared = EngineClaims()

    private struct State {
        /// Claims per signal number.
        var holders: [CInt: Int] = [:]
        /// Signals that a claim added to the engine (and so a release may remove).
        var added = SignalSet()
    }

    private let state = Mutex(State())

    /// Claims `signals`: afterwards the engine runs and watches them all. On error nothing is claimed.
    ///
    /// Refuses an engine that runs with manual delivery: its subscriptions get no events, so the services
    /// would never hear a signal.
    func acquire(_ signals: SignalSet, engine: SignalEngine = .shared) throws(SignalError) {
        try state.withLock { (state: inout State) throws(SignalError) in
            if engine.configuration?.delivery == .manual {
                throw .invalidConfiguration("the signal engine runs with manual delivery; lifecycle services need automatic")
            }
            let missing = signals.subtracting(engine.watchedSignals)
            if !missing.isEmpty {
                var started = false
                if !engine.isRunning {
                    do throws(SignalError) {
                        try engine.start(watching: missing)
                        started = true
                    } catch .alreadyRunning {
                        // Someone else started it between the check and the call: watch instead.
                    } catch {
                        throw error
                    }
                }
                if !started { try engine.watch(missing) }
                state.added.formUnion(missing)
            }
            for signal in signals { state.holders[signal.rawValue, default: 0] += 1 }
        }
    }

    /// Gives back a claim made by ``acquire(_:engine:)``. Errors are returned, not thrown: a release runs on
    /// the way out and has nobody to throw to.
    @discardableResult
    func release(_ signals: SignalSet, engine: SignalEngine = .shared) -> SignalError? {
        state.withLock { state in
            var unwatch = SignalSet()
            for signal in signals {
                let left = (state.holders[signal.rawValue] ?? 1) - 1
                if left > 0 {
                    state.holders[signal.rawValue] = left
                } else {
                    state.holders[signal.rawValue] = nil
                    if state.added.remove(signal) != nil { unwatch.insert(signal) }
                }
            }
            guard !unwatch.isEmpty, engine.isRunning else { return nil }
            do throws(SignalError) {
                try engine.unwatch(unwatch)
                return nil
            } catch {
                return error
            }
        }
    }
}
#endif
