#if canImport(Glibc)
import Glibc
#endif

/// What one driver mode measured: per receiver, one entry per round.
struct ModeResults {
    var latency: [String: [LatencyResult]] = [:]
    /// Every latency sample of every round (ns), for the plot.
    var samples: [String: [Int64]] = [:]
    var rtFlood: [String: [FloodResult]] = [:]
    var usr1Flood: [String: [FloodResult]] = [:]
}

/// Everything measured so far, and the tables and target lines made from it.
struct Report {
    var kinds: [ReceiverKind]
    var modes: [DriverMode]
    var rounds: Int
    var samples: Int
    var flood: UInt64
    var pace: Double
    var spinMicroseconds: Double
    var results: [DriverMode: ModeResults] = [:]
    /// Per round: hasNew marginal ns, poll() marginal ns, plain hasNew loop ns/iter, plain poll loop, call floor.
    var pollCost: [[Double]] = []
    var allocRecord: (mallocs: Double, delivered: Double, dropped: Double)?
    var allocPerEvent: [String: Double] = [:]
    var notes: [String: String] = [:]
    var elapsedSeconds = 0.0
    var roundsDone = 0

    static let floor = ReceiverKind.floor
    /// Slack in the "at most one thread hop more than the floor" target: the wake-up count covers every thread of
    /// the receiver over the whole run (pool threads parking, timers), so a tenth of a wake-up per signal is
    /// noise, not a hop.
    static let hopSlack = 0.1

    // MARK: Numbers

    func median(_ values: [Double]) -> Double {
        let v = values.filter { !$0.isNaN }.sorted()
        guard !v.isEmpty else { return .nan }
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    func ran(_ mode: DriverMode, _ name: String) -> Bool { !(results[mode]?.latency[name] ?? []).isEmpty }

    /// Median over rounds of one latency figure, ns.
    func lat(_ mode: DriverMode, _ name: String, _ key: KeyPath<LatencyResult, Double>) -> Double {
        median((results[mode]?.latency[name] ?? []).map { $0[keyPath: key] })
    }

    func rtRuns(_ mode: DriverMode, _ name: String) -> [FloodResult] { results[mode]?.rtFlood[name] ?? [] }

    /// Median over rounds of one real-time flood figure.
    func rt(_ mode: DriverMode, _ name: String, _ key: KeyPath<FloodResult, Double>) -> Double {
        median(rtRuns(mode, name).map { $0[keyPath: key] })
    }

    /// The worst round's losses in the real-time flood.
    func rtLost(_ mode: DriverMode, _ name: String) -> UInt64? {
        rtRuns(mode, name).map { $0.sent - min($0.sent, $0.received) }.max()
    }

    /// The worst round's out-of-order deliveries, or nil when the receiver cannot see values.
    func rtUnordered(_ mode: DriverMode, _ kind: ReceiverKind) -> UInt64? {
        kind.seesValues ? rtRuns(mode, kind.name).map(\.outOfOrder).max() : nil
    }

    func usr1SeenFraction(_ mode: DriverMode, _ name: String) -> Double {
        median((results[mode]?.usr1Flood[name] ?? []).map { Double($0.received) / Double($0.sent) })
    }

    /// Rank by p50 among the receivers that ran in `mode` (1 = lowest latency).
    func ranks(_ mode: DriverMode) -> [String: Int] {
        let ordered = kinds.map(\.name).filter { ran(mode, $0) }.sorted { lat(mode, $0, \.p50) < lat(mode, $1, \.p50) }
        return Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($1, $0 + 1) })
    }

    // MARK: Text

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

    /// A ratio, or ">999" when it would not fit a column.
    func ratio(_ x: Double) -> String { x > 999 ? ">999" : f(x, 2) }

    /// Microseconds from nanoseconds, with fewer decimals as the number grows.
    func us(_ ns: Double) -> String {
        guard !ns.isNaN, !ns.isInfinite else { return "n/a" }
        let x = ns / 1000
        return x >= 1000 ? f(x, 0) : x >= 100 ? f(x, 1) : f(x, 2)
    }

    func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let p = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + p : p + s
    }

    func center(_ s: String, _ width: Int) -> String {
        let total = max(0, width - s.count)
        return String(repeating: " ", count: total / 2) + s + String(repeating: " ", count: total - total / 2)
    }

    static let nameWidth = 19

    func render() -> String {
        var out: [String] = []
        var loads = [Double](repeating: .nan, count: 3)
        _ = getloadavg(&loads, 3)
        out.append("SignalCore benchmark, \(Machine.date) | \(Machine.cpu), \(Machine.cores) CPUs, Linux \(Machine.kernel) | "
            + "load average \(f(loads[0], 2)) \(f(loads[1], 2)) \(f(loads[2], 2))")
        out.append("rounds \(roundsDone)/\(rounds) (receivers interleaved round-robin, each driver mode in a fresh process), "
            + "\(samples) latency samples per receiver per mode per round, pace \(f(pace, 0)) µs ±50%, floods of \(flood); "
            + "\(f(elapsedSeconds, 0)) s so far")
        out.append("Driver modes: \"sleeps\" = the sender sleeps on a futex from its sigqueue until the receiver's counter moves; "
            + "\"spins\" = it spins for up to \(f(spinMicroseconds, 0)) µs first (then sleeps), and spins while a flood drains.")
        out.append("")
        out += latencyTable()
        out.append("")
        out += tailTable()
        out.append("")
        out += floodTable()
        out.append("")
        out += costs()
        out.append("")
        out.append("Targets (ratios within this run; medians over rounds)")
        for mode in modes {
            out.append("  \(mode.title(spinMicroseconds: spinMicroseconds)):")
            out += targets(mode)
        }
        out += costTargets()
        let skipped = notes.filter { note in !modes.contains { ran($0, note.key) } }
        if !skipped.isEmpty {
            out.append("")
            out.append("Not run")
            for (k, v) in skipped.sorted(by: { $0.key < $1.key }) { out.append("  \(k): \(v)") }
        }
        out.append("")
        out.append("Receivers")
        for kind in kinds { out.append("  " + pad(kind.name, Report.nameWidth, left: true) + kind.summary) }
        return out.joined(separator: "\n")
    }

    func latencyTable() -> [String] {
        var out: [String] = []
        let block = 40
        out.append("Latency: sender's CLOCK_MONOTONIC right before sigqueue(SIGUSR1) → user code sees it (µs); "
            + "rank by p50; ×floor = ratio to \(Report.floor)")
        out.append(pad("", Report.nameWidth) + modes.map { center($0.title(spinMicroseconds: spinMicroseconds), block) + "  " }.joined())
        out.append(pad("receiver", Report.nameWidth, left: true) + modes.map { _ in
            pad("rank", 5) + pad("p50", 7) + pad("p99", 7) + pad("p50×fl", 7) + pad("p99×fl", 7) + pad("wakes", 7) + "  "
        }.joined())
        let allRanks = Dictionary(uniqueKeysWithValues: modes.map { ($0, ranks($0)) })
        for kind in kinds {
            var line = pad(kind.name, Report.nameWidth, left: true)
            guard modes.contains(where: { ran($0, kind.name) }) else {
                out.append(line + (notes[kind.name] ?? "not run"))
                continue
            }
            for mode in modes {
                guard ran(mode, kind.name) else {
                    line += pad("not run", block) + "  "
                    continue
                }
                let p50 = lat(mode, kind.name, \.p50)
                let p99 = lat(mode, kind.name, \.p99)
                line += pad(allRanks[mode]?[kind.name].map { "\($0)" } ?? "", 5) + pad(f(p50 / 1000), 7) + pad(f(p99 / 1000), 7)
                    + pad(f(p50 / lat(mode, Report.floor, \.p50), 2), 7) + pad(f(p99 / lat(mode, Report.floor, \.p99), 2), 7)
                    + pad(f(lat(mode, kind.name, \.sleepsPerSignal), 2), 7) + "  "
            }
            out.append(line)
        }
        out.append("  (wakes = receiver threads that went to sleep per ping, over all its threads: each is a wake-up, a thread hop, on the next signal's path)")
        for mode in modes {
            let order = ranks(mode).sorted { $0.value < $1.value }.map { "\($0.key) \(f(lat(mode, $0.key, \.p50) / 1000))" }
            guard !order.isEmpty else { continue }
            out.append("")
            out.append("Ranking by p50, \(mode.title(spinMicroseconds: spinMicroseconds)) (µs):")
            var line = " "
            for (i, item) in order.enumerated() {
                let entry = " \(i + 1). \(item)"
                if line.count + entry.count > 118 {
                    out.append(line)
                    line = " "
                }
                line += entry
            }
            out.append(line)
        }
        return out
    }

    func tailTable() -> [String] {
        var out: [String] = []
        let block = 36
        out.append("Latency tails (µs; timeouts = pings unanswered within 1 s, summed over rounds)")
        out.append(pad("", Report.nameWidth) + modes.map { center($0.title(spinMicroseconds: spinMicroseconds), block) + "  " }.joined())
        out.append(pad("receiver", Report.nameWidth, left: true) + modes.map { _ in
            pad("p90", 8) + pad("p99.9", 9) + pad("max", 10) + pad("timeouts", 9) + "  "
        }.joined())
        for kind in kinds where modes.contains(where: { ran($0, kind.name) }) {
            var line = pad(kind.name, Report.nameWidth, left: true)
            for mode in modes {
                guard ran(mode, kind.name) else {
                    line += pad("not run", block) + "  "
                    continue
                }
                let timeouts = (results[mode]?.latency[kind.name] ?? []).map(\.timeouts).reduce(0, +)
                line += pad(f(lat(mode, kind.name, \.p90) / 1000), 8) + pad(f(lat(mode, kind.name, \.p999) / 1000), 9)
                    + pad(f(lat(mode, kind.name, \.max) / 1000), 10) + pad("\(timeouts)", 9) + "  "
            }
            out.append(line)
        }
        return out
    }

    func floodTable() -> [String] {
        var out: [String] = []
        let block = 50
        out.append("Flood: \(flood) SIGRTMIN+1 by sigqueue (values 1...N), then \(flood) SIGUSR1 by kill, flat out. k/s = deliveries user "
            + "code saw per second; lost = RT values never seen (worst round); unord = values out of order (worst round; - = the receiver "
            + "sees no values); CPU = receiver's on-CPU time, all threads, per RT delivery seen; USR1 % = share of the SIGUSR1 flood seen "
            + "(standard signals merge while one is pending)")
        out.append(pad("", Report.nameWidth) + modes.map { center($0.title(spinMicroseconds: spinMicroseconds), block) + "  " }.joined())
        out.append(pad("receiver", Report.nameWidth, left: true) + modes.map { _ in
            pad("RT k/s", 7) + pad("×fl", 6) + pad("lost", 7) + pad("unord", 6) + pad("CPU µs", 9) + pad("×fl", 8) + pad("USR1 %", 7) + "  "
        }.joined())
        for kind in kinds where modes.contains(where: { ran($0, kind.name) }) {
            var line = pad(kind.name, Report.nameWidth, left: true)
            for mode in modes {
                let usr1 = pad(f(usr1SeenFraction(mode, kind.name) * 100), 7) + "  "
                guard let lost = rtLost(mode, kind.name) else {
                    line += pad(ran(mode, kind.name) ? "no RT signals" : "not run", block - 7) + (ran(mode, kind.name) ? usr1 : pad("", 7) + "  ")
                    continue
                }
                let rate = rt(mode, kind.name, \.perSecond)
                let cpu = rt(mode, kind.name, \.cpuPerSignal)
                line += pad(f(rate / 1000, 0), 7) + pad(ratio(rate / rt(mode, Report.floor, \.perSecond)), 6) + pad("\(lost)", 7)
                    + pad(rtUnordered(mode, kind).map { "\($0)" } ?? "-", 6) + pad(us(cpu), 9)
                    + pad(ratio(cpu / rt(mode, Report.floor, \.cpuPerSignal)), 8) + usr1
            }
            out.append(line)
        }
        out.append("  (sc-poll and signal-hook-flag spin, so their CPU is a full core whatever arrives)")
        return out
    }

    func costs() -> [String] {
        var out: [String] = ["Costs"]
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
        out.append("  allocations per event, steady state (paced): for await \(allocs("alloc-sc-await")), for await on engine.executor "
            + "\(allocs("alloc-sc-await-exec")), blocking next(timeout:) \(allocs("alloc-sc-blocking"))")
        return out
    }

    // MARK: Targets

    func targets(_ mode: DriverMode) -> [String] {
        var lines: [String] = []
        func check(_ ok: Bool?, _ text: String) {
            lines.append("    " + (ok == nil ? "n/a " : ok! ? "PASS" : "MISS") + "  " + text)
        }
        func µs(_ ns: Double) -> String { f(ns / 1000) }
        let floorP50 = lat(mode, Report.floor, \.p50)
        let floorP99 = lat(mode, Report.floor, \.p99)
        let floorRan = ran(mode, Report.floor)
        let asyncPeers = kinds.filter(\.isAsyncPeer).map(\.name).filter { ran(mode, $0) }

        for variant in ["", "@main"] {
            let forAwait = "sc-await" + variant
            if ran(mode, forAwait) {
                if asyncPeers.isEmpty {
                    check(nil, "\(forAwait) ahead of every async peer at p50 and p99: no async peer ran")
                } else {
                    let best50 = asyncPeers.min { lat(mode, $0, \.p50) < lat(mode, $1, \.p50) }!
                    let best99 = asyncPeers.min { lat(mode, $0, \.p99) < lat(mode, $1, \.p99) }!
                    let ahead = lat(mode, forAwait, \.p50) < lat(mode, best50, \.p50) && lat(mode, forAwait, \.p99) < lat(mode, best99, \.p99)
                    check(ahead, "\(forAwait) ahead of every async peer (\(asyncPeers.joined(separator: ", "))) at p50 and p99: "
                        + "p50 \(µs(lat(mode, forAwait, \.p50))) vs \(best50) \(µs(lat(mode, best50, \.p50))), "
                        + "p99 \(µs(lat(mode, forAwait, \.p99))) vs \(best99) \(µs(lat(mode, best99, \.p99)))")
                }
                let wakes = lat(mode, forAwait, \.sleepsPerSignal)
                let floorWakes = lat(mode, Report.floor, \.sleepsPerSignal)
                check(floorRan ? wakes <= floorWakes + 1 + Report.hopSlack : nil,
                      "\(forAwait) at most one thread hop more than the floor: \(f(wakes, 2)) vs \(f(floorWakes, 2)) wake-ups per signal")
            }
            let exec = "sc-await-exec" + variant
            if ran(mode, exec) {
                let r50 = lat(mode, exec, \.p50) / floorP50
                let r99 = lat(mode, exec, \.p99) / floorP99
                check(floorRan ? r50 <= 1.2 && r99 <= 1.3 : nil, "\(exec) p50 ≤ 1.2× floor and p99 ≤ 1.3×: \(f(r50, 2))×, \(f(r99, 2))×")
            }
            let blocking = "sc-blocking" + variant
            if ran(mode, blocking) {
                let r50 = lat(mode, blocking, \.p50) / floorP50
                check(floorRan ? r50 <= 1.1 : nil, "\(blocking) p50 ≤ 1.1× floor: \(f(r50, 2))× (p99 \(f(lat(mode, blocking, \.p99) / floorP99, 2))×)")
            }
            let poll = "sc-poll" + variant
            if ran(mode, poll) {
                let flag = "signal-hook-flag"
                let r50 = lat(mode, poll, \.p50) / lat(mode, flag, \.p50)
                let r99 = lat(mode, poll, \.p99) / lat(mode, flag, \.p99)
                check(ran(mode, flag) ? r50 <= 1.1 && r99 <= 1.1 : nil,
                      "\(poll) ≤ 1.1× signal-hook's spinning flag at p50 and p99: \(f(r50, 2))×, \(f(r99, 2))×"
                        + (ran(mode, flag) ? "" : " (\(flag) did not run)"))
            }
            for path in ["sc-await", "sc-await-exec", "sc-blocking", "sc-poll"] {
                let name = path + variant
                guard let kind = kinds.first(where: { $0.name == name }), let lost = rtLost(mode, name) else { continue }
                let rate = rt(mode, name, \.perSecond) / rt(mode, Report.floor, \.perSecond)
                let unordered = rtUnordered(mode, kind)
                check(floorRan ? rate >= 0.9 && lost == 0 && (unordered ?? 0) == 0 : nil,
                      "\(name) RT flood with defaults ≥ 0.9× floor, 0 lost, in order: \(f(rate, 2))×, lost \(lost), "
                        + (unordered.map { "out of order \($0)" } ?? "order n/a (counts only)"))
                if path == "sc-poll" {
                    check(nil, "\(name) CPU per signal ≤ 1.2× floor: it spins, so its CPU is a full core by design")
                } else {
                    let cpu = rt(mode, name, \.cpuPerSignal) / rt(mode, Report.floor, \.cpuPerSignal)
                    check(floorRan ? cpu <= 1.2 : nil, "\(name) CPU per signal ≤ 1.2× floor: \(f(cpu, 2))× "
                        + "(\(us(rt(mode, name, \.cpuPerSignal))) vs \(us(rt(mode, Report.floor, \.cpuPerSignal))) µs)")
                }
            }
        }
        if lines.isEmpty { lines.append("    (no SignalCore receiver ran)") }
        return lines
    }

    func costTargets() -> [String] {
        guard !pollCost.isEmpty || allocRecord != nil else { return [] }
        var lines = ["  costs:"]
        func check(_ ok: Bool?, _ text: String) {
            lines.append("    " + (ok == nil ? "n/a " : ok! ? "PASS" : "MISS") + "  " + text)
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

    // MARK: Data for the plot

    /// Every latency sample and the flood figures, as JSON (Benchmarks/plot.py reads it).
    func json() -> String {
        func string(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
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
        func number(_ x: Double) -> String { x.isNaN || x.isInfinite ? "null" : "\(x)" }
        var parts: [String] = []
        parts.append("\"title\": " + string("SignalCore benchmark, \(Machine.date), \(Machine.cpu), \(Machine.cores) CPUs, "
            + "rounds \(roundsDone)/\(rounds), \(samples) samples per round, floods of \(flood)"))
        parts.append("\"floor\": " + string(Report.floor))
        parts.append("\"flood\": \(flood)")
        parts.append("\"receivers\": [" + kinds.map { kind in
            let family = kind.family == .c ? "c" : kind.family == .signalCore ? "signalcore" : "peer"
            return "{\"name\": \(string(kind.name)), \"family\": \(string(family)), \"summary\": \(string(kind.summary))}"
        }.joined(separator: ", ") + "]")
        parts.append("\"modes\": [" + modes.map { mode in
            let m = results[mode] ?? .init()
            let latency = kinds.compactMap { kind -> String? in
                guard let samples = m.samples[kind.name], !samples.isEmpty else { return nil }
                return string(kind.name) + ": [" + samples.map { "\($0)" }.joined(separator: ",") + "]"
            }
            let floods = kinds.compactMap { kind -> String? in
                guard let lost = rtLost(mode, kind.name) else { return nil }
                return string(kind.name) + ": {\"rt_per_second\": \(number(rt(mode, kind.name, \.perSecond))), \"rt_lost\": \(lost), "
                    + "\"rt_unordered\": \(rtUnordered(mode, kind).map { "\($0)" } ?? "null"), "
                    + "\"cpu_ns_per_signal\": \(number(rt(mode, kind.name, \.cpuPerSignal))), "
                    + "\"usr1_seen_fraction\": \(number(usr1SeenFraction(mode, kind.name)))}"
            }
            return "{\"name\": \(string(mode.rawValue)), \"title\": \(string(mode.title(spinMicroseconds: spinMicroseconds))), "
                + "\"latency_ns\": {" + latency.joined(separator: ", ") + "}, \"flood\": {" + floods.joined(separator: ", ") + "}}"
        }.joined(separator: ", ") + "]")
        return "{\n" + parts.joined(separator: ",\n") + "\n}\n"
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
