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
            CLOCK_MONOTONIC, sigqueue; the receiver stamps when user code sees the signal). Receivers are \
            interleaved round-robin over the rounds and the table shows per-round medians.
            """)

    @Flag(help: "One round, fewer samples: about a minute.")
    var quick = false
    @Option(help: "Rounds (receivers interleaved round-robin in each).")
    var rounds: Int?
    @Option(help: "Latency samples per receiver per round.")
    var samples: Int?
    @Option(help: "Mean pause between pings, microseconds (randomised ±50%).")
    var paceMicroseconds: Double = 500
    @Option(help: "Signals per flood (real-time and SIGUSR1).")
    var flood: UInt64 = 100_000
    @Option(help: "Comma-separated receiver names to run (default: all).")
    var only: String?
    @Option(help: "Directory with BenchReceiver, BenchCReceiver and libBenchMallocCounter.so (default: beside this program).")
    var binDir: String?
    @Option(help: "Python interpreter.")
    var python = "python3"
    @Option(help: "The Python receiver script.")
    var pythonReceiver = "Benchmarks/Receivers/python_receiver.py"
    @Option(help: "Also write the report here (rewritten after every round).")
    var output: String?
    @Option(help: "Profiling: a command prefix for every receiver, e.g. \"valgrind --tool=callgrind\" (space-separated).")
    var wrap: String?
    @Flag(help: "Skip the cost measurements (poll check, allocations).")
    var noCosts = false

    mutating func run() throws {
        let rounds = rounds ?? (quick ? 1 : 5)
        let samples = samples ?? (quick ? 1000 : 2000)
        let binDir = binDir ?? Bench.ownDirectory()
        var kinds = ReceiverKind.all(binDir: binDir, python: python, pythonReceiver: pythonReceiver)
        if let only {
            let names = Set(only.split(separator: ",").map(String.init))
            kinds = kinds.filter { names.contains($0.name) }
        }
        if let wrap {
            let prefix = wrap.split(separator: " ").map(String.init)
            for i in kinds.indices { kinds[i].command = prefix + kinds[i].command }
        }
        var report = Report(kinds: kinds, rounds: rounds, samples: samples, flood: flood, pace: paceMicroseconds)
        let started = cbench_now_ns()

        for round in 0..<rounds {
            let order = Array(kinds[(round % kinds.count)...] + kinds[..<(round % kinds.count)])
            for kind in order {
                progress("round \(round + 1)/\(rounds): \(kind.name)")
                let receiver: RunningReceiver
                do { receiver = try RunningReceiver(kind, tag: "\(kind.name)-\(round)") } catch {
                    report.notes[kind.name] = "\(error)"
                    continue
                }
                report.latency[kind.name, default: []].append(
                    Measure.latency(receiver, samples: samples, warmup: 50, paceMicroseconds: paceMicroseconds))
                if kind.realtime {
                    report.rtFlood[kind.name, default: []].append(
                        Measure.flood(receiver, slot: 1, signal: cbench_rtmin(), count: flood, queued: true, settle: 1.0))
                }
                report.usr1Flood[kind.name, default: []].append(
                    Measure.flood(receiver, slot: 0, signal: SIGUSR1, count: flood, queued: false, settle: 0.3))
                receiver.stop()
            }
            if !noCosts, kinds.contains(where: { $0.name.hasPrefix("sc-") }) {
                progress("round \(round + 1)/\(rounds): costs")
                measureCosts(binDir: binDir, round: round, report: &report)
            }
            report.elapsedSeconds = Double(cbench_now_ns() - started) / 1e9
            report.roundsDone = round + 1
            publish(report)
        }
    }

    func measureCosts(binDir: String, round: Int, report: inout Report) {
        let swiftReceiver = ReceiverKind(name: "costs", summary: "", command: [binDir + "/BenchReceiver"])
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
            _ = cbench_flood(receiver.process.pid, cbench_rtmin(), UInt64(recordN), 1)
        }) {
            report.allocRecord = (mallocs: r[0], delivered: r[1], dropped: r[2])
        }
        for mode in ["alloc-await", "alloc-await-exec", "alloc-blocking"] {
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
        if let output {
            let f = fopen(output, "w")
            if let f {
                fputs(text + "\n", f)
                fclose(f)
            }
        }
    }

    func progress(_ message: String) {
        let text = "[bench] \(message)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    static func ownDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}
