#if ServiceLifecycleIntegration && TelemetryIntegration
import SignalCore

// The output protocol and its helpers (`say`, `fail`, `must`, `waitUntil`, `runAsync`, `argument`,
// `HelperThread`) come from ChildProcessTesting, which the tests read the output with.

/// Whether the engine watches every signal of `signals` now.
func engineWatches(_ signals: SignalSet) -> Bool {
    SignalEngine.shared.watchedSignals.isSuperset(of: signals)
}
#endif
