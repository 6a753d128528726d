import SignalCore

/// The child supervisor's only contact with the signal engine: a new subscription to `signals`, which makes the
/// engine watch them (starting it when needed).
///
/// It never stops the engine and never unwatches: the engine and its watched set belong to the whole process, and
/// a signal whose last subscription ends stays caught (the engine's claim rule). The subscription ends when the
/// task iterating it is cancelled or the sequence is dropped.
func childSupervisorEvents(for signals: SignalSet, buffering: SignalBuffering) throws(SignalError) -> SignalEvents {
    try SignalEngine.shared.events(for: signals, buffering: buffering)
}
