import CSignalShim

/// One delivery of a signal, as the kernel described it, recorded by SignalCore's C recorder.
public struct SignalEvent: Sendable, Hashable, CustomStringConvertible {
    /// The signal that was delivered.
    public var signal: Signal
    /// `si_code`: how it was sent.
    public var code: Code
    /// `si_pid`: the sender's process id (0 when the kernel sent it).
    public var senderPID: CInt
    /// `si_uid`: the sender's real user id.
    public var senderUID: UInt32
    /// `si_value.sival_int` (meaningful for `sigqueue`).
    public var value: CInt
    /// `si_value.sival_ptr`, as an integer.
    public var pointerValue: UInt64
    /// CLOCK_MONOTONIC, in nanoseconds, when the recorder saw the delivery.
    public var monotonicNanoseconds: Int64
    /// Which path recorded it: the wait thread, or the fallback handler on another thread.
    public var route: Route
    /// Position in the recorder's ring: 1, 2, 3, ... for one engine run, across all signals.
    public var sequence: UInt64
    /// Kernel thread id of the thread that recorded it.
    public var threadID: CInt

    init(_ record: csignal_record) {
        signal = Signal(record.signo)
        code = Code(rawValue: record.code)
        senderPID = record.pid
        senderUID = record.uid
        value = record.value_int
        pointerValue = record.value_ptr
        monotonicNanoseconds = record.time_ns
        route = Route(rawValue: record.route) ?? .handler
        sequence = record.sequence
        threadID = record.tid
    }

    /// Makes an event by hand, for tests and for code that replays records; the engine makes the real ones.
    public init(
        signal: Signal, code: Code = .user, senderPID: CInt = 0, senderUID: UInt32 = 0, value: CInt = 0,
        pointerValue: UInt64 = 0, monotonicNanoseconds: Int64 = 0, route: Route = .waitThread,
        sequence: UInt64 = 0, threadID: CInt = 0
    ) {
        self.signal = signal
        self.code = code
        self.senderPID = senderPID
        self.senderUID = senderUID
        self.value = value
        self.pointerValue = pointerValue
        self.monotonicNanoseconds = monotonicNanoseconds
        self.route = route
        self.sequence = sequence
        self.threadID = threadID
    }

    /// "SIGTERM #3 from pid 812 (SI_USER) value 0 via waitThread".
    public var description: String {
        "\(signal) #\(sequence) from pid \(senderPID) (\(code)) value \(value) via \(route)"
    }
}
