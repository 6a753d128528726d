import SignalCore

/// A value that threads wait on until it changes the way they need (the package's `Gate` guards it).
///
/// Every change goes through ``update(_:)``, which wakes the waiters; a waiter checks its predicate with the value
/// locked, so a change made between its check and its sleep is never missed.
final class Condition<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched inside `gate`'s calls.
    private var value: Value
    private let gate = Gate()

    init(_ value: Value) { self.value = value }

    /// Changes the value, then wakes every waiter.
    @discardableResult
    func update<T>(_ change: (inout Value) -> T) -> T { gate.update { change(&value) } }

    /// Reads the value.
    func read<T>(_ read: (Value) -> T) -> T { gate.read { read(value) } }

    /// Sleeps until `predicate` holds, with no timeout: the thread wakes only when something changes.
    func wait(until predicate: (Value) -> Bool) { gate.wait { predicate(value) } }

    /// Waits until `predicate` holds or `timeout` passes. Returns whether it holds.
    func wait(timeout: Duration, until predicate: (Value) -> Bool) -> Bool {
        gate.wait(timeout: timeout) { predicate(value) }
    }
}
