import SignalCore

/// Checks a stress run's accounting: what the senders say they sent against what the target's SignalCore
/// recorded and handed to Swift.
///
/// The rules, and why each one holds for a correct engine:
/// - **Real-time signals, exactly once, with their value.** The kernel queues every real-time signal with its
///   value; each one the senders queued must appear in exactly one record (no loss, no duplicate, no value
///   that nobody sent).
/// - **Per-sender order.** One queue is taken by one taker at a time, oldest first within a signal number, and
///   the taker records in the order it takes. A thread's own queue has one taker, that thread; the process's
///   queue is taken by whichever thread holds SignalCore's wait role, one at a time, so ring order is take
///   order. So for a fixed sender and signal, the sender's sequence numbers must rise: across all records of
///   process-directed ones, and per recording thread for thread-directed ones. (Across signal numbers or
///   queues there is no order: the kernel delivers lower numbers first.)
/// - **A standard signal after the last send.** Standard signals coalesce, so the guarantee is one delivery
///   after the last send. Each sender ends with a handshake per standard signal and destination, sent one
///   sender at a time after every sender finished: marker A (real-time, same queue), wait until the target
///   saw A, send the signal, marker B. A was taken before the send, and the kernel hands out lower signal
///   numbers first within a queue, so the signal's delivery must be recorded strictly between A and B (on the
///   destination thread, for a thread-directed one): exactly one such record. Nothing else can put this
///   signal in that window: the other senders are done, each signal goes to one kind of destination only,
///   and an earlier pending instance in the same queue would have been taken before A.
/// - **Counters.** For every watched signal: delivered = records that reached Swift + records dropped, and
///   delivered = via wait thread + via handler. Standard signals: no more deliveries than sends.
/// - **Nothing left behind.** No signal still pending in the kernel at the end, no subscription overflow, no
///   failed send.
public struct StressChecker {
    public var realtimeMinimum: Int32
    /// How many examples each violation keeps.
    public var exampleLimit = 5

    public init(realtimeMinimum: Int32) {
        self.realtimeMinimum = realtimeMinimum
    }

    public struct Violation: Sendable, CustomStringConvertible {
        public var rule: String
        public var count: Int
        public var examples: [String]
        public var description: String {
            "\(rule): \(count)" + (examples.isEmpty ? "" : " (e.g. " + examples.joined(separator: "; ") + ")")
        }
    }

    public struct SignalRow: Sendable {
        public var signal: Int32
        public var sent: Int
        public var counts: SignalCounts
        public var records: Int
    }

    public struct Result: Sendable {
        public var violations: [Violation]
        public var rows: [SignalRow]
        public var realtimeExpected: Int
        public var realtimeReceived: Int
        public var missing: Int
        public var duplicates: Int
        public var outOfOrder: Int
        public var handshakesVerified: Int
        public var handshakesTotal: Int
        public var retries: UInt64
        public var ok: Bool { violations.isEmpty }
    }

    private struct Tally {
        var count = 0
        var examples: [String] = []
        mutating func add(_ example: @autoclosure () -> String, limit: Int) {
            count += 1
            if examples.count < limit { examples.append(example()) }
        }
    }

    public func check(records unsorted: [StressRecord], senders: [StressSenderReport], target: StressTargetReport) -> Result {
        let records = unsorted.sorted { $0.sequence < $1.sequence }
        var tallies: [String: Tally] = [:]
        func violation(_ rule: String, _ example: @autoclosure () -> String) {
            tallies[rule, default: Tally()].add(example(), limit: exampleLimit)
        }
        let senderByID = Dictionary(uniqueKeysWithValues: senders.map { ($0.id, $0) })

        // Real-time: exactly once, known values, SI_QUEUE, per-stream order.
        var seen: [Int: [UInt8]] = [:]
        for s in senders { seen[s.id] = [UInt8](repeating: 0, count: s.realtimeSent + 1) }
        struct StreamKey: Hashable { var sender: Int, signal: Int32, threadDirected: Bool, threadID: Int32 }
        var lastInStream: [StreamKey: Int] = [:]
        var location: [Int: [Int: Int]] = [:]  // markers: sender -> sequence -> index in `records`
        var received = 0
        var outOfOrder = 0
        for (index, r) in records.enumerated() where r.signal >= realtimeMinimum {
            guard let v = StressValue(raw: r.value), let report = senderByID[v.sender], v.sequence <= report.realtimeSent else {
                violation("real-time value nobody sent", "signal \(r.signal) value \(r.value) at #\(r.sequence)")
                continue
            }
            if r.code != -1 { violation("real-time signal without SI_QUEUE", "\(v) si_code \(r.code)") }
            if seen[v.sender]![v.sequence] < 255 { seen[v.sender]![v.sequence] += 1 }
            if seen[v.sender]![v.sequence] == 1 {
                received += 1
                if v.marker { location[v.sender, default: [:]][v.sequence] = index }
            }
            let key = StreamKey(sender: v.sender, signal: r.signal, threadDirected: v.threadDirected,
                                threadID: v.threadDirected ? r.threadID : 0)
            if let last = lastInStream[key], v.sequence <= last {
                outOfOrder += 1
                violation("real-time signal out of per-sender order", "\(v) after #\(last) (signal \(r.signal), thread \(r.threadID))")
            }
            lastInStream[key] = max(lastInStream[key] ?? 0, v.sequence)
        }
        var missing = 0
        var duplicates = 0
        for s in senders {
            let counts = seen[s.id]!
            for q in 1..<counts.count {
                if counts[q] == 0 {
                    missing += 1
                    violation("real-time signal lost", "sender \(s.id) #\(q)")
                } else if counts[q] > 1 {
                    duplicates += 1
                    violation("real-time signal recorded more than once", "sender \(s.id) #\(q) ×\(counts[q])")
                }
            }
        }

        // Standard signals: exactly one delivery between the handshake's markers, on the markers' thread.
        var verified = 0
        var handshakes = 0
        for s in senders {
            for h in s.handshakes {
                handshakes += 1
                guard let a = location[s.id]?[h.preMarker], let b = location[s.id]?[h.postMarker] else {
                    violation("handshake marker missing: standard signal unverifiable", "sender \(s.id) signal \(h.signal) to \(h.destination)")
                    continue
                }
                // Thread-directed: both markers and the signal are taken by the destination thread. Process-directed:
                // by whoever held the wait role at the time.
                var thread: Int32? = nil
                if case .thread(let tid) = h.destination { thread = tid }
                guard a < b, thread == nil || (records[a].threadID == thread && records[b].threadID == thread) else {
                    violation("handshake markers reversed or on the wrong thread", "sender \(s.id) signal \(h.signal) to \(h.destination)")
                    continue
                }
                // No si_code filter: Linux reports tgkill from another process as SI_USER, like kill.
                let between = records[(a + 1)..<b].filter { $0.signal == h.signal && (thread == nil || $0.threadID == thread) }.count
                if between == 1 {
                    verified += 1
                } else if between == 0 {
                    violation("no delivery of a standard signal after the sender's last send",
                              "sender \(s.id) signal \(h.signal) to \(h.destination): nothing between markers #\(h.preMarker) and #\(h.postMarker)"
                                + " (between them: " + records[(a + 1)..<b].prefix(6).map { "\($0.signal)/\($0.code)/\($0.threadID)" }.joined(separator: " ") + ")")
                } else {
                    violation("standard signal recorded more than once for one send",
                              "sender \(s.id) signal \(h.signal) to \(h.destination): \(between) between markers")
                }
            }
        }

        // Counters.
        var recordsBySignal: [Int32: Int] = [:]
        for r in records { recordsBySignal[r.signal, default: 0] += 1 }
        var sentBySignal: [Int32: Int] = [:]
        for s in senders { for (signal, n) in s.standardSent { sentBySignal[signal, default: 0] += n } }
        for s in senders {
            // Real-time sends by signal are not itemised; their exactness is checked value by value above.
            if s.sendError != 0 { violation("a send failed", "sender \(s.id): errno \(s.sendError)") }
        }
        var rows: [SignalRow] = []
        for (signal, c) in target.counts.sorted(by: { $0.key < $1.key }) {
            let n = recordsBySignal[signal] ?? 0
            if c.delivered != UInt64(n) + c.droppedRecords {
                violation("counter ≠ records + dropped", "signal \(signal): delivered \(c.delivered), records \(n), dropped \(c.droppedRecords)")
            }
            if c.delivered != c.viaWaitThread + c.viaHandler {
                violation("counter ≠ via wait thread + via handler", "signal \(signal): \(c.delivered) ≠ \(c.viaWaitThread) + \(c.viaHandler)")
            }
            if signal < realtimeMinimum, let sent = sentBySignal[signal], c.delivered > UInt64(sent) {
                violation("more deliveries of a standard signal than sends", "signal \(signal): \(c.delivered) > \(sent)")
            }
            rows.append(SignalRow(signal: signal, sent: sentBySignal[signal] ?? -1, counts: c, records: n))
        }
        for signal in recordsBySignal.keys where target.counts[signal] == nil {
            violation("records of a signal the target did not watch", "signal \(signal)")
        }
        if target.subscriptionDropped > 0 {
            violation("subscription buffer overflowed", "\(target.subscriptionDropped) events")
        }
        if target.pendingAtEnd != 0 {
            violation("signals still pending in the kernel at the end", "mask 0x" + String(target.pendingAtEnd, radix: 16))
        }

        let violations = tallies.map { Violation(rule: $0.key, count: $0.value.count, examples: $0.value.examples) }
            .sorted { $0.rule < $1.rule }
        return Result(
            violations: violations, rows: rows, realtimeExpected: senders.map(\.realtimeSent).reduce(0, +),
            realtimeReceived: received, missing: missing, duplicates: duplicates, outOfOrder: outOfOrder,
            handshakesVerified: verified, handshakesTotal: handshakes, retries: senders.map(\.retries).reduce(0, +))
    }
}
