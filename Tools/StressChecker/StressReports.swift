import SignalCore

/// One delivery as the stress target's consumer received it from SignalCore.
public struct StressRecord: Hashable, Sendable {
    /// SignalCore's ring sequence: the order the recorder saw deliveries in.
    public var sequence: UInt64
    public var signal: Int32
    /// `si_code`: 0 SI_USER (kill), -1 SI_QUEUE (sigqueue, rt_tgsigqueueinfo), -6 SI_TKILL (tgkill).
    public var code: Int32
    public var value: Int32
    /// The thread that recorded it: the wait thread, or the worker whose fallback handler ran.
    public var threadID: Int32

    public init(sequence: UInt64, signal: Int32, code: Int32, value: Int32, threadID: Int32) {
        self.sequence = sequence
        self.signal = signal
        self.code = code
        self.value = value
        self.threadID = threadID
    }

    /// The on-disk form: 24 bytes, little-endian (sequence, signal, code, value, thread id).
    public static let encodedSize = 24

    public func encode(into bytes: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) } }
        put(sequence)
        put(signal)
        put(code)
        put(value)
        put(threadID)
    }

    public static func decode(_ bytes: [UInt8]) -> [StressRecord] {
        var records: [StressRecord] = []
        records.reserveCapacity(bytes.count / encodedSize)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            func get<T: FixedWidthInteger>(_: T.Type) -> T {
                let x = raw.loadUnaligned(fromByteOffset: offset, as: T.self)
                offset += MemoryLayout<T>.size
                return T(littleEndian: x)
            }
            while offset + encodedSize <= raw.count {
                records.append(StressRecord(
                    sequence: get(UInt64.self), signal: get(Int32.self), code: get(Int32.self), value: get(Int32.self),
                    threadID: get(Int32.self)))
            }
        }
        return records
    }
}

/// Where a signal was sent.
public enum StressDestination: Hashable, Sendable, CustomStringConvertible {
    /// Process-directed: kill / sigqueue. Only the wait thread takes these.
    case process
    /// Thread-directed (tgkill / rt_tgsigqueueinfo) to this thread, the wait thread or a worker.
    case thread(Int32)

    public var description: String {
        switch self {
        case .process: return "process"
        case .thread(let tid): return "thread \(tid)"
        }
    }
}

/// One final handshake of a sender for one standard signal at one destination: a marker, then the signal,
/// then a second marker, each marker confirmed by the target before the next send.
public struct StressHandshake: Hashable, Sendable {
    public var signal: Int32
    public var destination: StressDestination
    public var preMarker: Int
    public var postMarker: Int

    public init(signal: Int32, destination: StressDestination, preMarker: Int, postMarker: Int) {
        self.signal = signal
        self.destination = destination
        self.preMarker = preMarker
        self.postMarker = postMarker
    }
}

/// What a sender says it did.
public struct StressSenderReport: Sendable {
    public var id: Int
    /// Real-time signals queued, markers included: sequences 1...realtimeSent.
    public var realtimeSent: Int
    /// Standard signals sent, by signal number (handshake sends included).
    public var standardSent: [Int32: Int]
    public var retries: UInt64
    public var handshakes: [StressHandshake]
    /// A send that failed for good (errno), or 0.
    public var sendError: Int32

    public init(id: Int, realtimeSent: Int, standardSent: [Int32: Int], retries: UInt64, handshakes: [StressHandshake], sendError: Int32 = 0) {
        self.id = id
        self.realtimeSent = realtimeSent
        self.standardSent = standardSent
        self.retries = retries
        self.handshakes = handshakes
        self.sendError = sendError
    }
}

/// What the target says about itself at the end.
public struct StressTargetReport: Sendable {
    public var waitThreadID: Int32
    public var workerThreadIDs: [Int32]
    /// Engine counters by signal number, for every watched signal.
    public var counts: [Int32: SignalCounts]
    /// Events the subscription lost because its buffer was full.
    public var subscriptionDropped: UInt64
    /// Signals still pending in the kernel when the target finished (bit n-1 = signal n).
    public var pendingAtEnd: UInt64
    public var churnThreads: UInt64

    public init(waitThreadID: Int32, workerThreadIDs: [Int32], counts: [Int32: SignalCounts], subscriptionDropped: UInt64,
                pendingAtEnd: UInt64, churnThreads: UInt64) {
        self.waitThreadID = waitThreadID
        self.workerThreadIDs = workerThreadIDs
        self.counts = counts
        self.subscriptionDropped = subscriptionDropped
        self.pendingAtEnd = pendingAtEnd
        self.churnThreads = churnThreads
    }
}
