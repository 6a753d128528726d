import ArgumentParser
import CBench

#if canImport(Glibc)
import Glibc
#endif

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signalcore-bench",
        abstract: "SignalCore against the C floor and its peers: latency, flood throughput and loss, CPU, costs.",
        discussion: """
            Every receiver is its own process; the driver pings it through a shared page in /dev/shm (stamp \
            CLOCK_MONOTONIC, sigqueue; the receiver stamps when user code sees the signal), in two driver modes: \
            asleep on a futex until the answer, or spinning first. Receivers are interleaved round-robin over the \
            rounds, each mode in a fresh process, and the tables show per-round medians.
            """)

    @Flag(help: "One round, fewer samples, smaller floods: about a minute.")
    var quick = false
    @Option(help: "Rounds (receivers interleaved round-robin in each; default 5, 1 with --quick).")
    var rounds: Int?
    @Option(help: "Latency samples per receiver per driver mode per round (default 2000, 500 with --quick).")
    var samples: Int?
    @Option(help: "Mean pause between pings, microseconds (randomised ±50%).")
    var paceMicroseconds: Double = 500
    @Option(help: "Signals per flood, real-time and SIGUSR1 (default 100000, 20000 with --quick).")
    var flood: UInt64?
    @Option(help: "Driver modes, comma-separated: sleep (futex until the answer), spin (spin, then sleep).")
    var modes = "sleep,spin"
    @Option(help: "How long the spinning driver spins after each send before it sleeps, microseconds.")
    var spinMicroseconds: Double = 20
    @Option(help: "Comma-separated receiver names to run (default: all).")
    var only: String?
    @Option(help: "Directory with BenchReceiver, BenchAsyncReceiver, BenchCReceiver and libBenchMallocCounter.so (default: beside this program).")
    var binDir: String?
    @Option(help: "Directory with the Go and Rust peers scripts/bench built (default: peers/ in the .build directory that holds BIN_DIR).")
    var peersDir: String?
    @Option(help: "Python interpreter.")
    var python = "python3"
    @Option(help: "The Python receiver script.")
    var pythonReceiver = "Benchmarks/Receivers/python/receiver.py"
    @Option(help: "Also write the report here (rewritten after every round).")
    var output: String?
    @Option(help: "Write every latency sample and flood result here as JSON (for Benchmarks/plot.py).")
    var data: String?
    @Option(help: "Profiling: a command prefix for every receiver, e.g. \"valgrind --tool=callgrind\" (space-separated).")
    var wrap: String?
    @Flag(help: "Skip the cost measurements (poll check, allocations).")
    var noCosts = false

    mutating func run() throws {
        let rounds = rounds ?? (quick ? 1 : 5)
        let samples = samples ?? (quick ? 500 : 2000)
        let flood = flood ?? (quick ? 20_000 : 100_000)
        let binDir = binDir ?? Bench.ownDirectory()
        let peersDir = peersDir ?? Bench.buildDirectory(of: binDir) + "/peers"
        var driverModes: [DriverMode] = []
        for name in modes.split(separator: ",") {
            guard let mode = DriverMode(rawValue: String(name)) else { throw ValidationError("unknown driver mode \(name)") }
            driverModes.append(mode)
        }
        var kinds = ReceiverKind.all(binDir: binDir, peersDir: peersDir, python: python, pythonReceiver: pythonReceiver)
        if let only {
            let names = Set(only.split(separator: ",").map(String.init))
            let unknown = names.subtracting(kinds.map(\.name))
            if !unknown.isEmpty { throw ValidationError("unknown receivers: \(unknown.sorted().joined(separator: ", "))") }
            kinds = kinds.filter { names.contains($0.name) }
        }
        if let wrap {
            let prefix = wrap.split(separator: " ").map(String.init)
            for i in kinds.indices { kinds[i].command = prefix + kinds[i].command }
        }
        var report = Report(kinds: kinds, modes: driverModes, rounds: rounds, samples: samples, flood: flood, pace: paceMicroseconds,
                            spinMicroseconds: spinMicroseconds)
        for kind in kinds {
            if let reason = kind.unavailable {
                progress("\(kind.name): \(reason)")
                report.notes[kind.name] = reason
            }
        }
        let runnable = kinds.filter { $0.unavailable == nil }
        let started = cbench_now_ns()
        let spinNs = Int64(spinMicroseconds * 1000)

        for round in 0..<rounds where !runnable.isEmpty {
            let order = Array(runnable[(round % runnable.count)...] + runnable[..<(round % runnable.count)])
            for kind in order {
                // Alternate which mode goes first, so neither always meets a freshly started machine.
                for mode in round % 2 == 0 ? driverModes : driverModes.reversed() {
                    progress("round \(round + 1)/\(rounds): \(kind.name), \(mode.title(spinMicroseconds: spinMicroseconds))")
                    let receiver: RunningReceiver
                    do { receiver = try RunningReceiver(kind, tag: "\(kind.name)-\(mode)-\(round)") } catch {
                        report.notes[kind.name] = "\(error)"
                        continue
                    }
                    let (latency, latencies) = Measure.latency(receiver, samples: samples, warmup: 50, paceMicroseconds: paceMicroseconds,
                                                               spinNanoseconds: mode == .spin ? spinNs : 0)
                    report.results[mode, default: .init()].latency[kind.name, default: []].append(latency)
                    report.results[mode, default: .init()].samples[kind.name, default: []].append(contentsOf: latencies)
                    if kind.realtime {
                        let r = Measure.flood(receiver, slot: 1, signal: cbench_rt_signal(), count: flood, queued: true, settle: 1.0,
                                              spin: mode == .spin)
                        report.results[mode, default: .init()].rtFlood[kind.name, default: []].append(r)
                    }
                    let u = Measure.flood(receiver, slot: 0, signal: SIGUSR1, count: flood, queued: false, settle: 0.3, spin: mode == .spin)
                    report.results[mode, default: .init()].usr1Flood[kind.name, default: []].append(u)
                    receiver.stop()
                }
            }
            if !noCosts, runnable.contains(where: { $0.family == .signalCore }) {
                progress("round \(round + 1)/\(rounds): costs")
                measureCosts(binDir: binDir, round: round, report: &report)
            }
            report.elapsedSeconds = Double(cbench_now_ns() - started) / 1e9
            report.roundsDone = round + 1
            publish(report)
        }
        if runnable.isEmpty { publish(report) }
    }

    func measureCosts(binDir: String, round: Int, report: inout Report) {
        let swiftReceiver = ReceiverKind(name: "costs", summary: "", command: [binDir + "/BenchReceiver"], family: .signalCore)
        func run(_ mode: String, _ n: Int, preload: Bool, results: Int, drive: (RunningReceiver) -> Void) -> [Double]? {
            var kind = swiftReceiver
            kind.command.append(mode)
            let environment = preload ? ["LD_PRELOAD": binDir + "/libBenchMallocCounter.so"] : [:]
            do {
                let receiver = try RunningReceiver(kind, extraArguments: ["\(n)"], environment: environment, tag: "\(mode)-\(round)")
                defer { receiver.stop() }
                drive(receiver)
                return receiver.results(count: results, timeout: 120)
            } catch {
                report.notes[mode] = "\(error)"
                return nil
            }
        }
        if let r = run("poll-cost", 100_000_000, preload: false, results: 5, drive: { _ in }) {
            report.pollCost.append(r)
        }
        guard round == 0 else { return }  // allocation counts are exact: one run is enough
        let recordN = 50_000
        if let r = run("alloc-record", recordN, preload: true, results: 3, drive: { receiver in
            _ = cbench_flood(receiver.process.pid, cbench_rt_signal(), UInt64(recordN), 1)
        }) {
            report.allocRecord = (mallocs: r[0], delivered: r[1], dropped: r[2])
        }
        for mode in ["alloc-sc-await", "alloc-sc-await-exec", "alloc-sc-blocking"] {
            let n = 2_100
            if let r = run(mode, n, preload: true, results: 1, drive: { receiver in
                _ = Measure.latency(receiver, samples: n, warmup: 0, paceMicroseconds: 100)
            }) {
                report.allocPerEvent[mode] = r[0]
            }
        }
    }

    func publish(_ report: Report) {
        let text = report.render()
        print(text)
        if let output { save(text + "\n", to: output) }
        if let data { save(report.json(), to: data) }
    }

    func save(_ text: String, to path: String) {
        guard let f = fopen(path, "w") else {
            progress("cannot write \(path): errno \(errno)")
            return
        }
        fputs(text, f)
        fclose(f)
    }

    func progress(_ message: String) {
        let text = "[bench] \(message)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    /// The `.build` directory `binDir` lies in (SwiftPM's bin directory is .build/TRIPLE/CONFIGURATION).
    static func buildDirectory(of binDir: String) -> String {
        let parts = binDir.split(separator: "/", omittingEmptySubsequences: false)
        guard let index = parts.lastIndex(of: ".build") else { return binDir + "/.." }
        return parts[...index].joined(separator: "/")
    }

    static func ownDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}
