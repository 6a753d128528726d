extension SignalEvent {
    /// Which path recorded a delivery.
    public enum Route: Int32, Sendable, Hashable {
        /// The thread that holds the wait role took it from the kernel's queue with `sigwaitinfo`: the normal case.
        case waitThread = 0
        /// The fallback handler ran on another thread: SIGPIPE or SIGXFSZ where the kernel raised them, or a
        /// thread that let the signal in itself.
        case handler = 1
    }
}
