import ArgumentParser
import CStressSupport
import ChildProcessTesting
import StressChecker

#if canImport(Glibc)
import Glibc
#endif

/// One sender process: a main phase of real-time signals (with a standard signal every few), then, when the
/// orchestrator says `go`, the final handshake for every standard signal and destination.
struct Sender: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A sender process (started by `run`).", shouldDisplay: false)

    @Option var id: Int
    @Option var target: Int32
    @Option var waiter: Int32
    @Option(help: "Worker thread ids, comma-separated.") var workers: String = ""
    @Option(help: "Real-time signals to queue in the main phase.") var count: Int
    @Option(help: "A standard signal after every N real-time ones (0: none).") var standardEvery = 4
    @Option(help: "Signals per second (0: flat out).") var rate: Double = 0
    @Flag(inversion: .prefixedNo, help: "Also send to the wait thread and the workers.") var threadDirected = true
    @Option(help: "Real-time signals this sender may have in flight (sent, not yet taken by the target); 0: no limit.")
    var window = 512
    @Option var shm: String
    @Option(help: "Seconds one send may keep meeting EAGAIN, and one marker may stay unconfirmed.") var timeout: Double = 60

    struct Stream {
        var signal: CInt
        var thread: Int32?  // nil: process-directed
        var isWorker: Bool
    }

    func run() throws {
        guard let page = cstress_map(shm, 0) else { throw ValidationError("cannot map \(shm)") }
        let workerIDs = workers.split(separator: ",").compactMap { Int32($0) }
        var realtimeStreams = StressSignals.processRealtime.map { Stream(signal: $0, thread: nil, isWorker: false) }
        var standardStreams = StressSignals.processStandard.map { Stream(signal: $0, thread: nil, isWorker: false) }
        if threadDirected {
            realtimeStreams.append(Stream(signal: StressSignals.waiterRealtime, thread: waiter, isWorker: false))
            standardStreams.append(Stream(signal: StressSignals.waiterStandard, thread: waiter, isWorker: false))
            for w in workerIDs {
                realtimeStreams.append(Stream(signal: StressSignals.workerRealtime, thread: w, isWorker: true))
                standardStreams.append(Stream(signal: StressSignals.workerStandard, thread: w, isWorker: true))
            }
        }
        let timeoutNs = Int64(timeout * 1e9)
        var retries: UInt64 = 0
        var sequence = 0
        var standardSent: [CInt: Int] = [:]
        var sendError: CInt = 0

        func queue(_ stream: Stream, marker: Bool) -> CInt {
            sequence += 1
            let value = StressValue(sender: id, sequence: sequence, threadDirected: stream.thread != nil, marker: marker).raw
            if let tid = stream.thread {
                return cstress_tgsigqueue(target, tid, stream.signal, value, &retries, timeoutNs)
            }
            return cstress_sigqueue(target, stream.signal, value, &retries, timeoutNs)
        }
        func send(_ stream: Stream) -> CInt {
            standardSent[stream.signal, default: 0] += 1
            if let tid = stream.thread { return cstress_tgkill(target, tid, stream.signal, &retries, timeoutNs) }
            return cstress_kill(target, stream.signal, &retries, timeoutNs)
        }

        // Main phase.
        let start = monotonicNow()
        for i in 0..<count {
            if rate > 0 { cstress_sleep_ns(start + Int64(Double(i) / rate * 1e9) - monotonicNow()) }
            if window > 0, UInt64(sequence) >= cstress_taken(page, CInt(id)) + UInt64(window) {
                // Back-pressure: the target publishes what it took in steps of 64, so wait until we are
                // inside the window again (bounded).
                let waitDeadline = monotonicNow() + timeoutNs
                while UInt64(sequence) >= cstress_taken(page, CInt(id)) + UInt64(window) {
                    if monotonicNow() > waitDeadline {
                        sendError = ETIMEDOUT
                        break
                    }
                    cstress_sleep_ns(20_000)
                }
                if sendError != 0 { break }
            }
            var err = queue(realtimeStreams[i % realtimeStreams.count], marker: false)
            if err == 0, standardEvery > 0, (i + 1) % standardEvery == 0 {
                err = send(standardStreams[(i / standardEvery) % standardStreams.count])
            }
            if err != 0 {
                sendError = err
                break
            }
            if i & 1023 == 1023 {
                cstress_set_sent(page, CInt(id), UInt64(i + 1))
                cstress_set_retries(page, CInt(id), retries)
            }
        }
        cstress_set_sent(page, CInt(id), UInt64(sendError == 0 ? count : sequence))
        cstress_set_retries(page, CInt(id), retries)
        print("MAIN-DONE id=\(id) error=\(sendError)")
        fflush(nil)

        // Handshake, one sender at a time (the orchestrator says when).
        var handshakes: [StressHandshake] = []
        if sendError == 0, readStdinLine(deadline: monotonicNow() + 600_000_000_000) == "go" {
            func confirmed(_ seq: Int) -> Bool {
                let deadline = monotonicNow() + timeoutNs
                while cstress_marker_seen(page, CInt(id)) < UInt64(seq) {
                    if monotonicNow() > deadline { return false }
                    cstress_sleep_ns(100_000)
                }
                return true
            }
            for stream in standardStreams {
                let markerStream = Stream(
                    signal: StressSignals.marker(process: stream.thread == nil, worker: stream.isWorker),
                    thread: stream.thread, isWorker: stream.isWorker)
                var err = queue(markerStream, marker: true)
                let pre = sequence
                if err == 0, !confirmed(pre) { err = ETIMEDOUT }
                if err == 0 { err = send(stream) }
                if err == 0 { err = queue(markerStream, marker: true) }
                let post = sequence
                if err == 0, !confirmed(post) { err = ETIMEDOUT }
                if err != 0 {
                    sendError = err
                    break
                }
                handshakes.append(StressHandshake(signal: stream.signal, destination: stream.thread.map { .thread($0) } ?? .process,
                                                  preMarker: pre, postMarker: post))
            }
        }
        let std = standardSent.map { "\($0.key):\($0.value)" }.joined(separator: ",")
        let hs = handshakes.map { h -> String in
            let dest: String
            switch h.destination {
            case .process: dest = "p"
            case .thread(let t): dest = "\(t)"
            }
            return "\(h.signal):\(dest):\(h.preMarker):\(h.postMarker)"
        }.joined(separator: ",")
        print("SENDER id=\(id) rt=\(sequence) retries=\(retries) error=\(sendError) std=\(std) hs=\(hs)")
        fflush(nil)
    }

    static func parseReport(_ line: String) -> StressSenderReport? {
        let f = fields(line)
        guard let id = f["id"].flatMap({ Int($0) }), let rt = f["rt"].flatMap({ Int($0) }) else { return nil }
        var std: [Int32: Int] = [:]
        for item in (f["std"] ?? "").split(separator: ",") {
            let p = item.split(separator: ":")
            if p.count == 2, let s = Int32(p[0]), let n = Int(p[1]) { std[s] = n }
        }
        var handshakes: [StressHandshake] = []
        for item in (f["hs"] ?? "").split(separator: ",") {
            let p = item.split(separator: ":")
            guard p.count == 4, let s = Int32(p[0]), let a = Int(p[2]), let b = Int(p[3]) else { continue }
            let destination: StressDestination = p[1] == "p" ? .process : .thread(Int32(p[1]) ?? 0)
            handshakes.append(StressHandshake(signal: s, destination: destination, preMarker: a, postMarker: b))
        }
        return StressSenderReport(id: id, realtimeSent: rt, standardSent: std, retries: UInt64(f["retries"] ?? "") ?? 0,
                                  handshakes: handshakes, sendError: Int32(f["error"] ?? "") ?? 0)
    }
}
