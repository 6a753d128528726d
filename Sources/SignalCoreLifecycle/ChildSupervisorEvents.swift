import SignalCore

/// The child supervisor's only contact with the signal engine: makes sure the engine watches `signals` and
/// returns a new subscription to them.
///
/// It subscribes before it watches, so a delivery made between the two is not lost. It never stops the engine
/// and never unwatches: the engine and its watched set belong to the whole process. The subscription ends when
/// the task iterating it is cancelled or the sequence is dropped.
func childSupervisorEvents(for signals: SignalSet, bufferingLimit: Int) throws(SignalError) -> SignalEvents {
    let engine = SignalEngine.shared
    let events = engine.events(for: signals, bufferingLimit: bufferingLimit)
    try engine.ensureWatching(signals)
    return events
}
