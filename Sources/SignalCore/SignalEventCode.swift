extension SignalEvent {
    /// How a signal was sent: the kernel's `si_code`, as a value with names for the common cases.
    ///
    /// A struct rather than an enum, so that codes this library does not name (SIGCHLD's `CLD_EXITED`, SIGSEGV's
    /// `SEGV_MAPERR`, and so on, which reuse small positive numbers per signal) still round-trip.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The C `si_code` value.
        public let rawValue: CInt

        /// Wraps a C `si_code`.
        public init(rawValue: CInt) { self.rawValue = rawValue }

        /// SI_USER: sent with `kill` (or `raise`).
        public static let user = Code(rawValue: 0)
        /// SI_KERNEL: sent by the kernel.
        public static let kernel = Code(rawValue: 0x80)
        /// SI_QUEUE: sent with `sigqueue`, carrying a value.
        public static let queue = Code(rawValue: -1)
        /// SI_TIMER: a POSIX timer (`timer_create`) expired.
        public static let timer = Code(rawValue: -2)
        /// SI_MESGQ: a message arrived on an empty POSIX message queue.
        public static let messageQueue = Code(rawValue: -3)
        /// SI_ASYNCIO: asynchronous I/O completed.
        public static let asyncIO = Code(rawValue: -4)
        /// SI_SIGIO: queued SIGIO.
        public static let sigio = Code(rawValue: -5)
        /// SI_TKILL: sent to one thread with `tgkill` or `pthread_kill`.
        public static let tkill = Code(rawValue: -6)

        /// "SI_USER", "SI_QUEUE", ..., or the number.
        public var description: String {
            switch self {
            case .user: return "SI_USER"
            case .kernel: return "SI_KERNEL"
            case .queue: return "SI_QUEUE"
            case .timer: return "SI_TIMER"
            case .messageQueue: return "SI_MESGQ"
            case .asyncIO: return "SI_ASYNCIO"
            case .sigio: return "SI_SIGIO"
            case .tkill: return "SI_TKILL"
            default: return "si_code \(rawValue)"
            }
        }
    }
}
