#if canImport(Glibc)
import Glibc
#endif

/// Everything measured so far, and the table made from it.
struct Report {
    var kinds: [ReceiverKind]
    var rounds: Int
    var samples: Int
    var flood: UInt64
    var pace: Double
    var latency: [String: [LatencyResult]] = [:]
    var rtFlood: [String: [FloodResult]] = [:]
    var usr1Flood: [String: [FloodResult]] = [:]
    /// Per round: hasNew marginal ns, poll() marginal ns, plain hasNew loop ns/iter, plain poll loop, call floor.
    var pollCost: [[Double]] = []
    var allocRecord: (mallocs: Double, delivered: Double, dropped: Double)?
    var allocPerEvent: [String: Double] = [:]
    var notes: [String: String] = [:]
    var elapsedSeconds = 0.0
    var roundsDone = 0

    static let floor = "c-sigwaitinfo"

    func median(_ values: [Double]) -> Double {
        let v = values.filter { !$0.isNaN }.sorted()
        guard !v.isEmpty else { return .nan }
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    func lat(_ name: String, _ key: KeyPath<LatencyResult, Double>) -> Double {
        median((latency[name] ?? []).map { $0[keyPath: key] })
    }

    func rt(_ name: String, _ key: KeyPath<FloodResult, Double>) -> Double {
        median((rtFlood[name] ?? []).map { $0[keyPath: key] })
    }

    func f(_ x: Double, _ digits: Int = 1) -> String {
        guard !x.isNaN, !x.isInfinite else { return "n/a" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((abs(x) * scale).rounded())
        let whole = scaled / Int64(scale)
        var text = (x < 0 && scaled != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let fraction = String(scaled % Int64(scale))
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    /// Nanoseconds, switching to µs/ms when the number would not fit a column.
    func ns(_ x: Double) -> String {
        if x.isNaN || x.isInfinite { return "n/a" }
        if x >= 1e8 { return f(x / 1e6, 0) + "ms" }
        if x >= 1e6 { return f(x / 1e3, 0) + "µs" }
        return f(x, 0)
    }

    func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let p = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + p : p + s
    }

    func render() -> String {
        var out: [String] = []
        out.append("SignalCore benchmark, \(Machine.date) | \(Machine.cpu), \(Machine.cores) CPUs, Linux \(Machine.kernel)")
        out.append("rounds \(roundsDone)/\(rounds) (receivers interleaved round-robin), \(samples) latency samples per receiver per round, "
            + "pace \(f(pace, 0)) µs ±50%, floods of \(flood); \(f(elapsedSeconds, 0)) s so far")
        out.append("")
        out.append("Latency, sender's CLOCK_MONOTONIC right before sigqueue(SIGUSR1) → user code sees it (µs, median over rounds)")
        out.append(pad("receiver", 15, left: true) + pad("p50", 8) + pad("p90", 8) + pad("p99", 8) + pad("p99.9", 8) + pad("max", 9)
            + pad("p50/floor", 11) + pad("p99/floor", 11) + pad("sleeps", 8) + pad("timeouts", 10))
        let floorP50 = lat(Report.floor, \.p50)
        let floorP99 = lat(Report.floor, \.p99)
        for kind in kinds {
            guard let runs = latency[kind.name], !runs.isEmpty else {
                out.append(pad(kind.name, 15, left: true) + "  " + (notes[kind.name] ?? "not run"))
                continue
            }
            let timeouts = runs.map(\.timeouts).reduce(0, +)
            out.append(pad(kind.name, 15, left: true)
                + pad(f(lat(kind.name, \.p50) / 1000), 8) + pad(f(lat(kind.name, \.p90) / 1000), 8)
                + pad(f(lat(kind.name, \.p99) / 1000), 8) + pad(f(lat(kind.name, \.p999) / 1000), 8)
                + pad(f(lat(kind.name, \.max) / 1000), 9)
                + pad(f(lat(kind.name, \.p50) / floorP50, 2) + "×", 11) + pad(f(lat(kind.name, \.p99) / floorP99, 2) + "×", 11)
                + pad(f(lat(kind.name, \.sleepsPerSignal), 2), 8) + pad("\(timeouts)", 10))
        }
        out.append("  (sleeps = receiver threads that went to sleep per ping: each one is a wake-up on the next signal's path)")
        out.append("")
        out.append("Flood: \(flood) SIGRTMIN by sigqueue (values 1...N) and \(flood) SIGUSR1 by kill, flat out; CPU = receiver's on-CPU time (all threads) per delivery seen")
        out.append(pad("receiver", 15, left: true) + pad("RT seen", 9) + pad("lost", 7) + pad("unordered", 10) + pad("RT k/s", 9)
            + pad("×floor", 8) + pad("CPU ns", 9) + pad("×floor", 8) + pad("EAGAIN", 9) + pad("USR1 seen", 11) + pad("CPU ns", 9))
        let floorRate = rt(Report.floor, \.perSecond)
        let floorCPU = rt(Report.floor, \.cpuPerSignal)
        for kind in kinds {
            var line = pad(kind.name, 15, left: true)
            if let runs = rtFlood[kind.name], !runs.isEmpty {
                let seen = median(runs.map { Double($0.received) })
                let lost = runs.map { $0.sent - min($0.sent, $0.received) }.max() ?? 0
                let unordered = kind.seesValues ? "\(runs.map(\.outOfOrder).max() ?? 0)" : "-"
                line += pad(f(seen, 0), 9) + pad("\(lost)", 7) + pad(unordered, 10)
                    + pad(f(rt(kind.name, \.perSecond) / 1000, 0), 9) + pad(f(rt(kind.name, \.perSecond) / floorRate, 2), 8)
                    + pad(ns(rt(kind.name, \.cpuPerSignal)), 9) + pad(rt(kind.name, \.cpuPerSignal) / floorCPU > 999 ? ">999" : f(rt(kind.name, \.cpuPerSignal) / floorCPU, 2), 8)
                    + pad(f(median(runs.map { Double($0.retries) }), 0), 9)
            } else {
                line += pad(latency[kind.name] == nil ? "-" : "n/a (no RT)", 9) + String(repeating: " ", count: 59)
            }
            if let runs = usr1Flood[kind.name], !runs.isEmpty {
                line += pad(f(median(runs.map { Double($0.received) }), 0), 11) + pad(ns(median(runs.map(\.cpuPerSignal))), 9)
            }
            out.append(line)
        }
        out.append("  (standard signals coalesce: 'USR1 seen' counts deliveries, not sends; sc-poll spins, so its CPU figures are a full core)")
        out.append("")
        out.append("Costs")
        let hasNew = median(pollCost.map { $0[0] })
        let pollCall = median(pollCost.map { $0[1] })
        let plain = median(pollCost.map { $0[2] })
        out.append("  poll check: poller.hasNew \(f(hasNew, 2)) ns, poller.poll() \(f(pollCall, 2)) ns (marginal: loop of blackHole(x) minus loop of blackHole(false)); "
            + "plain loop `if hasNew { n += 1 }` \(f(plain, 2)) ns/iteration (loop overhead included)")
        if let a = allocRecord {
            out.append("  allocations, recording path (manual delivery, no Swift per signal): \(f(a.mallocs, 0)) mallocs in the whole process for \(f(a.delivered, 0)) deliveries (\(f(a.dropped, 0)) dropped)")
        } else {
            out.append("  allocations, recording path: \(notes["alloc-record"] ?? "not measured")")
        }
        func allocs(_ mode: String) -> String { allocPerEvent[mode].map { f($0, 2) } ?? (notes[mode] ?? "n/a") }
        out.append("  allocations per event, steady state (paced): for await \(allocs("alloc-await")), for await on engine.executor "
            + "\(allocs("alloc-await-exec")), blocking next(timeout:) \(allocs("alloc-blocking"))")
        out.append("")
        out.append("Targets (ratios within this run)")
        out.append(contentsOf: targets())
        let skipped = notes.filter { n in !kinds.contains { $0.name == n.key } || latency[n.key] == nil }
        if !skipped.isEmpty {
            out.append("")
            out.append("Notes")
            for (k, v) in skipped.sorted(by: { $0.key < $1.key }) { out.append("  \(k): \(v)") }
        }
        out.append("")
        out.append("Receivers")
        for kind in kinds { out.append("  " + pad(kind.name, 15, left: true) + kind.summary) }
        return out.joined(separator: "\n")
    }

    func targets() -> [String] {
        var lines: [String] = []
        func check(_ ok: Bool?, _ text: String) {
            lines.append("  " + (ok == nil ? "n/a " : ok! ? "PASS" : "MISS") + "  " + text)
        }
        let floorP50 = lat(Report.floor, \.p50)
        let floorP99 = lat(Report.floor, \.p99)
        let peers = kinds.filter(\.isPeer).map(\.name).filter { latency[$0] != nil }
        for awaitName in ["sc-await", "sc-await-exec"] where latency[awaitName] != nil {
            let r = lat(awaitName, \.p50) / floorP50
            check(r.isNaN ? nil : r <= 1.3, "\(awaitName) p50 ≤ 1.3× floor: \(f(r, 2))×")
            let bestPeerP50 = peers.map { lat($0, \.p50) }.min() ?? .nan
            let bestPeerP99 = peers.map { lat($0, \.p99) }.min() ?? .nan
            check(peers.isEmpty ? nil : lat(awaitName, \.p50) < bestPeerP50 && lat(awaitName, \.p99) < bestPeerP99,
                  "\(awaitName) ahead of every peer (\(peers.joined(separator: ", "))) at p50 and p99: "
                    + "\(f(lat(awaitName, \.p50) / 1000)) vs best \(f(bestPeerP50 / 1000)) µs, \(f(lat(awaitName, \.p99) / 1000)) vs best \(f(bestPeerP99 / 1000)) µs")
        }
        if latency["sc-blocking"] != nil {
            let r = lat("sc-blocking", \.p50) / floorP50
            check(r.isNaN ? nil : r <= 1.1, "sc-blocking p50 ≤ 1.1× floor: \(f(r, 2))× (p99 \(f(lat("sc-blocking", \.p99) / floorP99, 2))×)")
        }
        for name in ["sc-await", "sc-await-exec", "sc-blocking"] {
            guard let runs = rtFlood[name], !runs.isEmpty else { continue }
            let rate = rt(name, \.perSecond) / rt(Report.floor, \.perSecond)
            let lost = runs.map { $0.sent - min($0.sent, $0.received) }.max() ?? 0
            let unordered = runs.map(\.outOfOrder).max() ?? 0
            check(rate.isNaN ? nil : rate >= 0.9 && lost == 0 && unordered == 0,
                  "\(name) RT flood ≥ 0.9× floor throughput, 0 lost, every record in order in Swift: \(f(rate, 2))×, lost \(lost), out of order \(unordered)")
            let cpu = rt(name, \.cpuPerSignal) / rt(Report.floor, \.cpuPerSignal)
            check(cpu.isNaN ? nil : cpu <= 1.3, "\(name) CPU per signal ≤ 1.3× floor: \(f(cpu, 2))× (\(f(rt(name, \.cpuPerSignal), 0)) vs \(f(rt(Report.floor, \.cpuPerSignal), 0)) ns)")
        }
        let hasNew = median(pollCost.map { $0[0] })
        check(pollCost.isEmpty ? nil : hasNew <= 0.5, "poll check ≤ 0.5 ns: \(f(hasNew, 2)) ns marginal (plain loop \(f(median(pollCost.map { $0[2] }), 2)) ns/iteration)")
        if let a = allocRecord {
            check(a.mallocs == 0 && a.delivered > 0, "zero allocations on the recording path: \(f(a.mallocs, 0)) for \(f(a.delivered, 0)) signals")
        } else {
            check(nil, "zero allocations on the recording path: not measured")
        }
        return lines
    }
}

enum Machine {
    static var cores: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
    static var cpu: String {
        guard let f = fopen("/proc/cpuinfo", "r") else { return "unknown CPU" }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        defer { free(line) }
        while getline(&line, &size, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("model name"), let colon = s.firstIndex(of: ":") {
                return s[s.index(after: colon)...].trimmingCharacters()
            }
        }
        return "unknown CPU"
    }
    static var kernel: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
    static var date: String {
        var t = time(nil)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var buffer = [CChar](repeating: 0, count: 64)
        strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M UTC", &tmv)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed())
    }
}
