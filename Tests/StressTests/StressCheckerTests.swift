import SignalCore
import StressChecker
import Testing

/// The checker on hand-made runs: a clean one passes, and each kind of fault is caught by its own rule.
private let rt: Int32 = 34
private let waiter: Int32 = 100
private let worker: Int32 = 101

@Suite struct StressCheckerTests {
    /// Two senders, each queuing 6 real-time signals (process, wait thread, worker) and one handshake per
    /// destination; records as a correct engine would produce them.
    struct Run {
        var records: [StressRecord] = []
        var senders: [StressSenderReport] = []
        var counts: [Int32: SignalCounts] = [:]

        init() {
            var sequence: UInt64 = 0
            func record(_ signal: Int32, code: Int32, value: Int32, thread: Int32) {
                sequence += 1
                records.append(StressRecord(sequence: sequence, signal: signal, code: code, value: value, threadID: thread))
            }
            for sender in 0..<2 {
                var q = 0
                func queue(_ signal: Int32, thread: Int32?, recordedBy: Int32, marker: Bool = false) -> Int {
                    q += 1
                    record(signal, code: -1, value: StressValue(sender: sender, sequence: q, threadDirected: thread != nil, marker: marker).raw,
                           thread: recordedBy)
                    return q
                }
                for _ in 0..<2 {
                    _ = queue(rt, thread: nil, recordedBy: waiter)
                    _ = queue(rt + 1, thread: waiter, recordedBy: waiter)
                    _ = queue(rt + 2, thread: worker, recordedBy: worker)
                }
                var handshakes: [StressHandshake] = []
                for (signal, destination, thread, marker) in [(Int32(10), StressDestination.process, waiter, rt),
                                                               (Int32(12), StressDestination.thread(worker), worker, rt + 2)] {
                    let a = queue(marker, thread: destination == .process ? nil : thread, recordedBy: thread, marker: true)
                    record(signal, code: 0, value: 0, thread: thread)
                    let b = queue(marker, thread: destination == .process ? nil : thread, recordedBy: thread, marker: true)
                    handshakes.append(StressHandshake(signal: signal, destination: destination, preMarker: a, postMarker: b))
                }
                senders.append(StressSenderReport(id: sender, realtimeSent: q, standardSent: [10: 3, 12: 2], retries: 0, handshakes: handshakes))
            }
            recount()
        }

        /// Counters that match the records (what a correct engine reports).
        mutating func recount() {
            counts = [:]
            for signal: Int32 in [10, 12, rt, rt + 1, rt + 2] {
                let mine = records.filter { $0.signal == signal }
                let viaHandler = UInt64(mine.filter { $0.threadID == worker }.count)
                counts[signal] = SignalCounts(delivered: UInt64(mine.count), viaWaitThread: UInt64(mine.count) - viaHandler,
                                              viaHandler: viaHandler, droppedRecords: 0)
            }
        }

        func check(pending: UInt64 = 0, subscriptionDropped: UInt64 = 0) -> StressChecker.Result {
            let target = StressTargetReport(waitThreadID: waiter, workerThreadIDs: [worker], counts: counts,
                                            subscriptionDropped: subscriptionDropped, pendingAtEnd: pending, churnThreads: 0)
            return StressChecker(realtimeMinimum: rt).check(records: records, senders: senders, target: target)
        }
    }

    func rules(_ result: StressChecker.Result) -> Set<String> { Set(result.violations.map(\.rule)) }

    @Test func valueEncodingRoundTrips() {
        let v = StressValue(sender: 31, sequence: StressValue.maxSequence, threadDirected: true, marker: true)
        #expect(v.raw > 0)
        #expect(StressValue(raw: v.raw) == v)
        #expect(StressValue(raw: StressValue(sender: 0, sequence: 1, threadDirected: false).raw)?.sequence == 1)
        #expect(StressValue(raw: 0) == nil)
        #expect(StressValue(raw: -5) == nil)
    }

    @Test func recordsRoundTripThroughTheFileFormat() {
        let run = Run()
        var bytes: [UInt8] = []
        for r in run.records { r.encode(into: &bytes) }
        #expect(bytes.count == run.records.count * StressRecord.encodedSize)
        #expect(StressRecord.decode(bytes) == run.records)
    }

    @Test func cleanRunPasses() {
        let result = Run().check()
        #expect(result.ok, "\(result.violations)")
        #expect(result.realtimeReceived == result.realtimeExpected)
        #expect(result.realtimeExpected == 2 * 10)
        #expect(result.handshakesVerified == 4)
        #expect(result.handshakesTotal == 4)
    }

    @Test func lostRealtimeSignalAndCounterMismatchAreCaught() {
        var run = Run()
        run.records.remove(at: 1)  // the engine counted it, Swift never saw it
        let result = run.check()
        #expect(rules(result) == ["real-time signal lost", "counter ≠ records + dropped"])
        #expect(result.missing == 1)
    }

    @Test func droppedRecordKeepsCountersHonestButIsStillALoss() {
        var run = Run()
        let gone = run.records.remove(at: 1)
        run.counts[gone.signal]!.droppedRecords = 1  // counted as dropped: counters add up
        #expect(rules(run.check()) == ["real-time signal lost"])
    }

    @Test func duplicateIsCaught() {
        var run = Run()
        var copy = run.records[2]
        copy.sequence = 1000
        run.records.append(copy)
        run.recount()
        #expect(rules(run.check()).contains("real-time signal recorded more than once"))
    }

    @Test func reorderWithinAStreamIsCaught() {
        var run = Run()
        // Sender 0's two process-directed SIGRTMIN (#1 and #4) swap places in the ring.
        let first = run.records.firstIndex { $0.value == StressValue(sender: 0, sequence: 1, threadDirected: false).raw }!
        let second = run.records.firstIndex { $0.value == StressValue(sender: 0, sequence: 4, threadDirected: false).raw }!
        let s = run.records[first].sequence
        run.records[first].sequence = run.records[second].sequence
        run.records[second].sequence = s
        #expect(rules(run.check()) == ["real-time signal out of per-sender order"])
    }

    @Test func processDirectedOrderHoldsAcrossWaitRoleHolders() {
        var run = Run()
        // A consumer that borrowed the wait role (tid 102) took some process-directed deliveries: still fine.
        let borrower: Int32 = 102
        for i in run.records.indices where i % 3 == 0 && run.records[i].threadID == waiter
            && !(StressValue(raw: run.records[i].value)?.threadDirected ?? true) {
            run.records[i].threadID = borrower
        }
        run.recount()
        #expect(run.check().ok, "\(run.check().violations)")
        // But the process's queue has one taker at a time: order across the holders still counts.
        let first = run.records.firstIndex { $0.value == StressValue(sender: 1, sequence: 1, threadDirected: false).raw }!
        let second = run.records.firstIndex { $0.value == StressValue(sender: 1, sequence: 4, threadDirected: false).raw }!
        run.records[first].threadID = borrower
        let s = run.records[first].sequence
        run.records[first].sequence = run.records[second].sequence
        run.records[second].sequence = s
        run.recount()
        #expect(rules(run.check()) == ["real-time signal out of per-sender order"])
    }

    @Test func orderAcrossDifferentQueuesIsNotRequired() {
        var run = Run()
        // The worker's record moves ahead of the wait thread's: different threads, no order between them.
        let a = run.records.firstIndex { $0.threadID == worker }!
        let s = run.records[a].sequence
        run.records[a].sequence = run.records[a - 1].sequence
        run.records[a - 1].sequence = s
        #expect(run.check().ok)
    }

    @Test func standardSignalMissingAfterLastSendIsCaught() {
        var run = Run()
        run.records.removeAll { $0.signal == 12 && $0.threadID == worker }
        run.recount()
        let result = run.check()
        #expect(rules(result) == ["no delivery of a standard signal after the sender's last send"])
        #expect(result.handshakesVerified == 2)
    }

    @Test func standardSignalOnTheWrongThreadDoesNotCount() {
        var run = Run()
        for i in run.records.indices where run.records[i].signal == 12 { run.records[i].threadID = waiter }
        run.recount()
        #expect(rules(run.check()).contains("no delivery of a standard signal after the sender's last send"))
    }

    @Test func unknownValuesPendingSignalsAndOverflowAreCaught() {
        var run = Run()
        run.records.append(StressRecord(sequence: 999, signal: rt, code: -1,
                                        value: StressValue(sender: 7, sequence: 1, threadDirected: false).raw, threadID: waiter))
        run.recount()
        let result = run.check(pending: 1 << 9, subscriptionDropped: 3)
        #expect(rules(result) == ["real-time value nobody sent", "signals still pending in the kernel at the end",
                                  "subscription buffer overflowed"])
    }

    @Test func moreStandardDeliveriesThanSendsIsCaught() {
        var run = Run()
        run.counts[10]!.delivered += 10
        run.counts[10]!.droppedRecords += 10
        run.counts[10]!.viaWaitThread += 10
        #expect(rules(run.check()) == ["more deliveries of a standard signal than sends"])
    }
}
