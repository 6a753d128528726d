import SignalCore

extension SignalEngine {
    /// Starts the engine watching `signals`, or adds them to the watched set when the engine already runs.
    /// Lets each lifecycle component start on its own, in any order.
    func ensureWatching(_ signals: SignalSet) throws(SignalError) {
        do {
            try start(watching: signals)
        } catch .alreadyRunning {
            try watch(signals)
        }
    }
}
