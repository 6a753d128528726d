import CBench

#if canImport(Glibc)
import Glibc
#endif

/// How the driver waits for the receiver's answer.
enum DriverMode: String, CaseIterable, Sendable {
    /// Asleep on a futex from the send until the counter moves (and between flood checks).
    case sleep
    /// Spinning (a pause instruction per check) for up to the spin time after the send, then asleep; during a
    /// flood's drain, spinning throughout. The sender's CPU stays busy, as a loaded sender's would.
    case spin

    func title(spinMicroseconds: Double) -> String {
        switch self {
        case .sleep: return "driver sleeps"
        case .spin: return "driver spins \(Int(spinMicroseconds)) µs"
        }
    }
}

/// Latency percentiles of one receiver in one round, in nanoseconds.
struct LatencyResult {
    var p50, p90, p99, p999, max: Double
    var samples: Int
    var timeouts: Int
    /// Receiver threads going to sleep per ping (each is a wake-up on the path of the next signal).
    var sleepsPerSignal: Double = .nan

    init(_ latencies: [Int64], timeouts: Int) {
        let sorted = latencies.sorted()
        func at(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
            return Double(sorted[Swift.max(0, Swift.min(sorted.count - 1, rank))])
        }
        p50 = at(0.50)
        p90 = at(0.90)
        p99 = at(0.99)
        p999 = at(0.999)
        max = Double(sorted.last ?? 0)
        samples = sorted.count
        self.timeouts = timeouts
    }
}

/// One flood: what was sent, what user code saw, how fast, at what CPU cost.
struct FloodResult {
    var sent: UInt64
    var received: UInt64
    var retries: UInt64
    var outOfOrder: UInt64
    /// Deliveries seen per second, from the first send to the last delivery seen.
    var perSecond: Double
    /// Receiver CPU (all threads) per delivery seen, ns.
    var cpuPerSignal: Double
    var error: CInt
}

enum Measure {
    /// `samples` paced pings (after `warmup` unrecorded ones). The pause between pings is `paceMicroseconds`
    /// times a random factor in 0.5...1.5, so the receiver goes idle and nothing locks into a rhythm.
    /// `spinNanoseconds` is how long the driver spins after each send before it sleeps (0: it sleeps at once).
    /// Returns the percentiles and the samples themselves.
    static func latency(_ receiver: RunningReceiver, samples: Int, warmup: Int, paceMicroseconds: Double,
                        spinNanoseconds: Int64 = 0) -> (LatencyResult, [Int64]) {
        cbench_store(&receiver.shm.pointee.wake_driver, 1)
        defer { cbench_store(&receiver.shm.pointee.wake_driver, 0) }
        var latencies: [Int64] = []
        latencies.reserveCapacity(samples)
        var timeouts = 0
        var sleeps0: Int64 = 0
        for i in 0..<(samples + warmup) {
            if i == warmup { sleeps0 = cbench_process_sleeps(receiver.process.pid) }
            cbench_sleep_ns(Int64(paceMicroseconds * 1000 * Double.random(in: 0.5...1.5)))
            var latency: Int64 = 0
            let rc = cbench_ping(receiver.shm, 0, receiver.process.pid, SIGUSR1, CInt(i + 1), spinNanoseconds, 1_000_000_000, &latency)
            if rc == ETIMEDOUT {
                timeouts += 1
                if timeouts > 5 { break }  // the receiver is not answering: stop wasting the round
                continue
            }
            if rc != 0 { break }
            if i >= warmup { latencies.append(latency) }
        }
        var result = LatencyResult(latencies, timeouts: timeouts)
        if !latencies.isEmpty {
            result.sleepsPerSignal = Double(cbench_process_sleeps(receiver.process.pid) - sleeps0) / Double(latencies.count + timeouts)
        }
        return (result, latencies)
    }

    /// Floods `count` signals; waits until user code saw them all, or nothing moved for `settle` seconds, checking
    /// every 0.5 ms asleep, or with `spin` spinning throughout.
    static func flood(_ receiver: RunningReceiver, slot: Int, signal: CInt, count: UInt64, queued: Bool, settle: Double,
                      spin: Bool = false) -> FloodResult {
        let before = receiver.received(slot)
        let cpu0 = receiver.cpuNanoseconds
        let sent = cbench_flood(receiver.process.pid, signal, count, queued ? 1 : 0)
        var last = receiver.received(slot)
        var lastChange = cbench_now_ns()
        let deadline = cbench_now_ns() + 60_000_000_000
        while last - before < count {
            if spin { cbench_spin_ns(500_000) } else { cbench_sleep_ns(500_000) }
            let now = cbench_now_ns()
            let n = receiver.received(slot)
            if n != last {
                last = n
                lastChange = now
            } else if Double(now - lastChange) > settle * 1e9 || now > deadline {
                break
            }
        }
        let cpu1 = receiver.cpuNanoseconds
        let received = last - before
        let recvNs = slot == 0 ? receiver.shm.pointee.slot.0.recv_ns : receiver.shm.pointee.slot.1.recv_ns
        let seconds = Double(recvNs - sent.start_ns) / 1e9
        let outOfOrder = slot == 0 ? receiver.shm.pointee.slot.0.out_of_order : receiver.shm.pointee.slot.1.out_of_order
        return FloodResult(
            sent: count, received: received, retries: sent.retries, outOfOrder: outOfOrder,
            perSecond: received > 0 && seconds > 0 ? Double(received) / seconds : 0,
            cpuPerSignal: received > 0 ? Double(cpu1 - cpu0) / Double(received) : .nan,
            error: sent.error)
    }
}
