import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One JSON line of process statistics, for SIGUSR1: the engine's per-signal counters, uptime, and the
/// application's own counters.
///
/// ```json
/// {"pid":4242,"uptime_seconds":12.503,"jobs_done":17,"config_generation":2,
///  "signals":{"SIGHUP":{"received":1,"via_wait_thread":1,"via_handler":0,"dropped_records":0}},
///  "dropped_records":0}
/// ```
/// (One line in reality.) Application counters come right after `uptime_seconds`, in the order given; a
/// counter named like a built-in key (`pid`, `uptime_seconds`, `signals`, `dropped_records`) is skipped.
public struct StatsReporter: Sendable {
    /// An application counter's value.
    public enum Value: Sendable, Hashable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral,
        ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral
    {
        case int(Int64)
        case double(Double)
        case string(String)
        case bool(Bool)

        public init(integerLiteral value: Int64) { self = .int(value) }
        public init(stringLiteral value: String) { self = .string(value) }
        public init(floatLiteral value: Double) { self = .double(value) }
        public init(booleanLiteral value: Bool) { self = .bool(value) }

        var json: String {
            switch self {
            case .int(let v): return String(v)
            case .double(let v): return v.isFinite ? String(v) : "null"
            case .string(let v): return StatsReporter.quote(v)
            case .bool(let v): return v ? "true" : "false"
            }
        }
    }

    /// Signals whose counters the line shows, in ascending order.
    public let signals: SignalSet
    /// When uptime starts.
    public let startedAt: ContinuousClock.Instant

    private static let reserved: Set<String> = ["pid", "uptime_seconds", "signals", "dropped_records"]

    public init(signals: SignalSet, startedAt: ContinuousClock.Instant = .now) {
        self.signals = signals
        self.startedAt = startedAt
    }

    /// The stats line (no trailing newline).
    public func line(counters: [(String, Value)] = []) -> String {
        let engine = SignalEngine.shared
        let uptime = ContinuousClock.now - startedAt
        let seconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
        var parts: [String] = ["\"pid\":\(getpid())", "\"uptime_seconds\":\((seconds * 1000).rounded() / 1000)"]
        for (key, value) in counters where !StatsReporter.reserved.contains(key) {
            parts.append("\(StatsReporter.quote(key)):\(value.json)")
        }
        let perSignal = signals.map { signal -> String in
            let c = engine.counts(for: signal)
            return "\(StatsReporter.quote(signal.description)):{\"received\":\(c.delivered),"
                + "\"via_wait_thread\":\(c.viaWaitThread),\"via_handler\":\(c.viaHandler),"
                + "\"dropped_records\":\(c.droppedRecords)}"
        }
        parts.append("\"signals\":{" + perSignal.joined(separator: ",") + "}")
        parts.append("\"dropped_records\":\(engine.droppedRecords)")
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Writes a stats line with `write` on every delivery of `signal` from now on: subscribes to it, which makes
    /// the engine watch it (starting it when needed). `counters` and `write` run on a thread of the reporter's
    /// own ("stats"), which sleeps with no timeout between requests. Cancel the task to stop; the thread ends
    /// with it, and the signal stays caught by the engine (counted, answered by nobody).
    ///
    /// Requests coalesce: the subscription keeps only the newest delivery not answered yet
    /// (``SignalBuffering/bufferingNewest(_:)`` of 1), so any number of requests that arrive while a line is
    /// written get one more line, which shows the counters as they are then. The kernel does the same with a
    /// standard signal that is sent again while it is pending.
    public func start(
        on signal: Signal = .sigusr1, counters: @escaping @Sendable () -> [(String, Value)],
        write: @escaping @Sendable (String) -> Void = StatsReporter.printLine
    ) throws(SignalError) -> Task<Void, Never> {
        try LifecycleThread.answering(signal, name: "stats") { write(self.line(counters: counters())) }
    }

    /// Prints `line` to standard output and flushes it.
    @Sendable public static func printLine(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
