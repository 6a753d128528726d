/// A set of signals (numbers 1...64), stored as one 64-bit mask: bit n-1 stands for signal n.
///
/// Two sets are equal when they hold the same signals; ``rejectedNumber`` takes no part in that.
public struct SignalSet: SetAlgebra, Hashable, Sendable, Sequence, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    /// Bit n-1 stands for signal n.
    public private(set) var mask: UInt64
    /// The first number inserted that no signal set can hold (outside 1...64), kept so that the engine can
    /// refuse the set with ``SignalError/outOfRange(_:)`` instead of silently watching less.
    public private(set) var rejectedNumber: CInt?

    /// The empty set.
    public init() { mask = 0 }
    /// The set whose bit n-1 is set for each member n.
    public init(mask: UInt64) { self.mask = mask }
    /// The set of the listed signals: `[.sigterm, .sigint]`.
    public init(arrayLiteral elements: Signal...) { self.init(elements) }
    /// The set of the signals in `signals`. Numbers outside 1...64 are not stored; the first one is kept in ``rejectedNumber``.
    public init<S: Sequence>(_ signals: S) where S.Element == Signal {
        mask = 0
        for signal in signals { insert(signal) }
    }

    /// Every real-time signal: SIGRTMIN...SIGRTMAX. While the engine runs, one of them is its internal signal
    /// (``Signal/engineInternal``), which cannot be watched.
    public static var realtime: SignalSet {
        SignalSet((Signal.realtimeMinimum.rawValue...Signal.realtimeMaximum.rawValue).map { Signal($0) })
    }

    /// Sets with the same signals are equal, whatever number either refused.
    public static func == (lhs: SignalSet, rhs: SignalSet) -> Bool { lhs.mask == rhs.mask }

    /// Hashes the members only, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) { hasher.combine(mask) }

    static func bit(_ signal: Signal) -> UInt64 {
        guard signal.rawValue >= 1, signal.rawValue <= 64 else { return 0 }
        return 1 << UInt64(signal.rawValue - 1)
    }

    /// Whether `member` is in the set.
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

    /// Removes `member`; returns it if it was there.
    @discardableResult
    public mutating func remove(_ member: Signal) -> Signal? {
        guard contains(member) else { return nil }
        mask &= ~SignalSet.bit(member)
        return member
    }

    /// Inserts `newMember`; returns it if it was already there, nil otherwise.
    @discardableResult
    public mutating func update(with newMember: Signal) -> Signal? {
        insert(newMember).inserted ? nil : newMember
    }

    /// The signals in either set.
    public func union(_ other: SignalSet) -> SignalSet {
        var result = self
        result.formUnion(other)
        return result
    }
    /// The signals in both sets.
    public func intersection(_ other: SignalSet) -> SignalSet { SignalSet(mask: mask & other.mask) }
    /// The signals in exactly one of the sets.
    public func symmetricDifference(_ other: SignalSet) -> SignalSet { SignalSet(mask: mask ^ other.mask) }
    /// Adds the signals of `other`.
    public mutating func formUnion(_ other: SignalSet) {
        mask |= other.mask
        if rejectedNumber == nil { rejectedNumber = other.rejectedNumber }
    }
    /// Keeps only the signals also in `other`.
    public mutating func formIntersection(_ other: SignalSet) { mask &= other.mask }
    /// Keeps the signals in exactly one of the sets.
    public mutating func formSymmetricDifference(_ other: SignalSet) { mask ^= other.mask }

    /// Throws ``SignalError/outOfRange(_:)`` for a rejected number, then validates each member for watching.
    func validateWatchable() throws(SignalError) {
        if let number = rejectedNumber { throw .outOfRange(number) }
        for signal in self { try signal.validateWatchable() }
    }

    /// The number of signals in the set.
    public var count: Int { mask.nonzeroBitCount }
    /// Whether the set has no signals.
    public var isEmpty: Bool { mask == 0 }

    /// Iterates the signals of a set in ascending order.
    public struct Iterator: IteratorProtocol {
        var remaining: UInt64
        /// The next signal, or nil after the last.
        public mutating func next() -> Signal? {
            guard remaining != 0 else { return nil }
            let index = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            return Signal(CInt(index + 1))
        }
    }

    /// Signals in ascending order.
    public func makeIterator() -> Iterator { Iterator(remaining: mask) }

    /// "[SIGHUP, SIGTERM]".
    public var description: String { "[" + map(\.description).joined(separator: ", ") + "]" }
}
