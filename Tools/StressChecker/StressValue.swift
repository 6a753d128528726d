/// How a stress sender packs its identity into a `sigqueue` value, so that the checker can tell every
/// real-time delivery apart.
///
/// Bit 30: marker (the final handshake). Bits 25...29: sender id (0...31). Bit 24: thread-directed
/// (rt_tgsigqueueinfo to one thread) rather than process-directed (sigqueue). Bits 0...23: the sender's
/// real-time sequence number, 1, 2, 3, ... across everything it queues (markers included).
public struct StressValue: Hashable, Sendable, CustomStringConvertible {
    public var sender: Int
    public var sequence: Int
    public var threadDirected: Bool
    public var marker: Bool

    public static let maxSenders = 32
    public static let maxSequence = (1 << 24) - 1

    public init(sender: Int, sequence: Int, threadDirected: Bool, marker: Bool = false) {
        precondition((0..<StressValue.maxSenders).contains(sender), "sender id out of range")
        precondition((1...StressValue.maxSequence).contains(sequence), "sequence out of range")
        self.sender = sender
        self.sequence = sequence
        self.threadDirected = threadDirected
        self.marker = marker
    }

    public init?(raw: Int32) {
        guard raw > 0 else { return nil }
        let v = Int(raw)
        sequence = v & 0xFF_FFFF
        threadDirected = v & (1 << 24) != 0
        sender = (v >> 25) & 31
        marker = v & (1 << 30) != 0
        guard sequence > 0 else { return nil }
    }

    public var raw: Int32 {
        Int32(sequence | (threadDirected ? 1 << 24 : 0) | (sender << 25) | (marker ? 1 << 30 : 0))
    }

    public var description: String {
        "sender \(sender) #\(sequence)\(threadDirected ? " (thread)" : "")\(marker ? " marker" : "")"
    }
}
