/// A set of signals (numbers 1...64), stored as one 64-bit mask: bit n-1 stands for signal n.
public struct SignalSet: SetAlgebra, Hashable, Sendable, Sequence, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    /// Bit n-1 stands for signal n.
    public private(set) var mask: UInt64
    /// The first number inserted that no signal set can hold (outside 1...64), kept so that the engine can
    /// refuse the set with ``SignalError/outOfRange(_:)`` instead of silently watching less.
    public private(set) var rejectedNumber: CInt?

    public init() { mask = 0 }
    public init(mask: UInt64) { self.mask = mask }
    public init(arrayLiteral elements: Signal...) { self.init(elements) }
    public init<S: Sequence>(_ signals: S) where S.Element == Signal {
        mask = 0
        for signal in signals { insert(signal) }
    }

    /// Every real-time signal a user may watch: SIGRTMIN...SIGRTMAX-1 (SIGRTMAX is the engine's own).
    public static var realtime: SignalSet {
        SignalSet((Signal.realtimeMinimum.rawValue..<Signal.engineInternal.rawValue).map { Signal($0) })
    }

    static func bit(_ signal: Signal) -> UInt64 {
        guard signal.rawValue >= 1, signal.rawValue <= 64 else { return 0 }
        return 1 << UInt64(signal.rawValue - 1)
    }

    public func contains(_ member: Signal) -> Bool {
        let bit = SignalSet.bit(member)
        return bit != 0 && mask & bit != 0
    }

    /// Numbers outside 1...64 cannot be stored and are not inserted (`inserted` is false).
    @discardableResult
    public mutating func insert(_ newMember: Signal) -> (inserted: Bool, memberAfterInsert: Signal) {
        let bit = SignalSet.bit(newMember)
        if bit == 0, rejectedNumber == nil { rejectedNumber = newMember.rawValue }
        let inserted = bit != 0 && mask & bit == 0
        mask |= bit
        return (inserted, newMember)
    }

    @discardableResult
    public mutating func remove(_ member: Signal) -> Signal? {
        guard contains(member) else { return nil }
        mask &= ~SignalSet.bit(member)
        return member
    }

    @discardableResult
    public mutating func update(with newMember: Signal) -> Signal? {
        insert(newMember).inserted ? nil : newMember
    }

    public func union(_ other: SignalSet) -> SignalSet {
        var result = self
        result.formUnion(other)
        return result
    }
    public func intersection(_ other: SignalSet) -> SignalSet { SignalSet(mask: mask & other.mask) }
    public func symmetricDifference(_ other: SignalSet) -> SignalSet { SignalSet(mask: mask ^ other.mask) }
    public mutating func formUnion(_ other: SignalSet) {
        mask |= other.mask
        if rejectedNumber == nil { rejectedNumber = other.rejectedNumber }
    }
    public mutating func formIntersection(_ other: SignalSet) { mask &= other.mask }
    public mutating func formSymmetricDifference(_ other: SignalSet) { mask ^= other.mask }

    /// Throws ``SignalError/outOfRange(_:)`` for a rejected number, then validates each member for watching.
    func validateWatchable() throws(SignalError) {
        if let number = rejectedNumber { throw .outOfRange(number) }
        for signal in self { try signal.validateWatchable() }
    }

    public var count: Int { mask.nonzeroBitCount }
    public var isEmpty: Bool { mask == 0 }

    public struct Iterator: IteratorProtocol {
        var remaining: UInt64
        public mutating func next() -> Signal? {
            guard remaining != 0 else { return nil }
            let index = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            return Signal(CInt(index + 1))
        }
    }

    /// Signals in ascending order.
    public func makeIterator() -> Iterator { Iterator(remaining: mask) }

    public var description: String { "[" + map(\.description).joined(separator: ", ") + "]" }
}
