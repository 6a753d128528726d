import ArgumentParser
import CStressSupport
import Dispatch
import Foundation
import SignalCore
import StressChecker
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The process under test: runs SignalCore, takes every record through a blocking subscription, optionally
/// churns threads that allocate, and at the end reports its accounting and writes every record to a file.
struct Target: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The target process (started by `run`).", shouldDisplay: false)

    @Option(help: "The run's shared page.") var shm: String
    @Option(help: "Where to write the records at the end.") var records: String
    @Option(help: "Worker threads that take thread-directed SIGUSR2 and SIGRTMIN+2.") var workers = 2
    @Option(help: "Churn threads (each keeps creating short-lived threads that allocate).") var churn = 0
    @Option(help: "Allocations per short-lived churn thread.") var churnAllocations = 2000
    @Option(help: "Testing the checker: the consumer throws away every Nth record (0: never).") var injectLoseEvery = 0
    @Option(help: "Seconds to wait for `finish` on stdin.") var timeout: Double = 900
    @Option(help: "Lower RLIMIT_SIGPENDING to this once the engine runs.") var sigpendingLimit: Int?

    func run() throws {
        guard let shared = cstress_map(shm, 0) else { throw ValidationError("cannot map \(shm)") }
        nonisolated(unsafe) let page = shared
        let engine = SignalEngine.shared
        let watched = SignalSet(StressSignals.watched.map { Signal($0) })
        // Consumer: every record, in ring order, as fast as it comes; the library's defaults throughout.
        let subscription = try engine.subscription(for: watched)
        guard let waiter = engine.waitThreadID else { throw ValidationError("no wait thread") }
        let collected = Mutex<[StressRecord]>([])
        let consumed = Atomic<UInt64>(0)
        let stopConsumer = Atomic<Bool>(false)
        let consumerDone = DispatchSemaphore(value: 0)
        let loseEvery = UInt64(injectLoseEvery)
        let rtmin = StressSignals.rt
        let consumer = Thread {
            var batch: [StressRecord] = []
            batch.reserveCapacity(4096)
            var taken = [UInt64](repeating: 0, count: StressValue.maxSenders)
            func take(_ event: SignalEvent) {
                let n = consumed.add(1, ordering: .relaxed).newValue
                if loseEvery > 0, n % loseEvery == 0 { return }  // deliberately lossy (checker self-test)
                batch.append(StressRecord(sequence: event.sequence, signal: event.signal.rawValue, code: event.code.rawValue,
                                          value: event.value, threadID: event.threadID))
                if event.signal.rawValue >= rtmin, let v = StressValue(raw: event.value) {
                    taken[v.sender] += 1
                    if taken[v.sender] & 63 == 0 { cstress_set_taken(page, CInt(v.sender), taken[v.sender]) }
                    if v.marker {
                        flush()
                        cstress_set_marker_seen(page, CInt(v.sender), UInt64(v.sequence))
                    }
                }
            }
            func flush() {
                if batch.isEmpty { return }
                collected.withLock { $0.append(contentsOf: batch) }
                batch.removeAll(keepingCapacity: true)
                cstress_store(&page.pointee.records_seen, consumed.load(ordering: .relaxed))
            }
            while !stopConsumer.load(ordering: .acquiring) {
                if let event = subscription.next(timeout: Duration.milliseconds(50)) {
                    take(event)
                    for e in subscription.drain() { take(e) }
                }
                flush()
            }
            consumerDone.signal()
        }
        consumer.start()

        // Workers: unblock their two signals; SignalCore's fallback handler records what is sent to them.
        let workerIDs = Mutex<[CInt]>([])
        let workersReady = DispatchSemaphore(value: 0)
        let stopWorkers = Atomic<Bool>(false)
        for _ in 0..<workers {
            Thread {
                let err = cstress_unblock_in_this_thread(StressSignals.workerStandard, StressSignals.workerRealtime)
                if err != 0 { printError("pthread_sigmask: errno \(err)") }
                workerIDs.withLock { $0.append(cstress_gettid()) }
                workersReady.signal()
                while !stopWorkers.load(ordering: .relaxed) { cstress_sleep_ns(20_000_000) }
            }.start()
        }
        for _ in 0..<workers {
            if workersReady.wait(timeout: .now() + 10) == .timedOut { throw ValidationError("workers did not start") }
        }
        if churn > 0 {
            let err = cstress_churn_start(CInt(churn), CInt(churnAllocations))
            if err != 0 { throw ValidationError("churn threads: errno \(err)") }
        }
        if let sigpendingLimit {
            // After start: the kernel checks the receiving process's limit against the user's whole pending
            // count, and start's own internal signals must not depend on what other processes have queued.
            let err = cstress_set_sigpending_limit(UInt64(sigpendingLimit))
            if err != 0 { throw ValidationError("setrlimit(RLIMIT_SIGPENDING): errno \(err)") }
        }
        let tids = workerIDs.withLock { $0 }
        print("READY pid=\(getpid()) waiter=\(waiter) workers=\(tids.map(String.init).joined(separator: ","))")
        fflushStdout()

        let deadline = monotonicNow() + Int64(timeout * 1e9)
        guard readStdinLine(deadline: deadline) == "finish" else { throw ValidationError("no `finish` before the timeout") }
        let churned = churn > 0 ? cstress_churn_stop() : 0

        // Quiesce: nothing pending in the kernel (bounded), then every counted delivery reached the consumer or
        // was counted as dropped (bounded; a shortfall is left for the checker to report).
        var watchedMask: UInt64 = 0
        for s in StressSignals.watched { watchedMask |= 1 << UInt64(s - 1) }
        var pending = UInt64(bitPattern: cstress_pending_mask()) & watchedMask
        let quiesceDeadline = monotonicNow() + 20_000_000_000
        while pending != 0, monotonicNow() < quiesceDeadline {
            cstress_sleep_ns(5_000_000)
            pending = UInt64(bitPattern: cstress_pending_mask()) & watchedMask
        }
        func expected() -> UInt64 {
            StressSignals.watched.reduce(0) { sum, s in
                let c = engine.counts(for: Signal(s))
                return sum + c.delivered - c.droppedRecords
            }
        }
        while consumed.load(ordering: .relaxed) < expected(), monotonicNow() < quiesceDeadline { cstress_sleep_ns(5_000_000) }
        var counts: [String] = []
        for s in StressSignals.watched {
            let c = engine.counts(for: Signal(s))
            counts.append("\(s):\(c.delivered):\(c.viaWaitThread):\(c.viaHandler):\(c.droppedRecords)")
        }
        stopConsumer.store(true, ordering: .releasing)
        if consumerDone.wait(timeout: .now() + 10) == .timedOut { throw ValidationError("consumer did not stop") }
        stopWorkers.store(true, ordering: .relaxed)
        let all = collected.withLock { $0 }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(all.count * StressRecord.encodedSize)
        for r in all { r.encode(into: &bytes) }
        guard let f = fopen(records, "w"), fwrite(bytes, 1, bytes.count, f) == bytes.count, fclose(f) == 0 else {
            throw ValidationError("cannot write \(records)")
        }
        print("SUMMARY waiter=\(waiter) workers=\(tids.map(String.init).joined(separator: ",")) records=\(all.count) "
            + "subdropped=\(subscription.droppedEvents) pending=\(pending) churn=\(churned) counts=\(counts.joined(separator: ","))")
        fflushStdout()
    }
}

func fflushStdout() { fflush(nil) }
