import ArgumentParser
import CStressSupport
import ChildProcessTesting
import SignalCore
import StressChecker

#if canImport(Glibc)
import Glibc
#endif

/// The orchestrator: starts the target and the senders, runs the handshakes one sender at a time, collects
/// every report and record, checks them, prints the summary. Exit status 1 on any violation (including a crash
/// or a hang of any process: every wait has a deadline).
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a stress test and check the accounting (the default command).",
        discussion: """
            Examples:
              signalcore-stress                                   quick run (50 000 real-time signals, 2 senders)
              signalcore-stress --count 1000000 --senders 4       a million real-time signals from 4 senders
              signalcore-stress --rate 20000 --churn 4            paced, while 4 threads churn and allocate
            The kernel's queue of pending signals per user (ulimit -i) is shared by every process of the user;
            senders that meet it (EAGAIN) retry, and the summary says how often.
            """)

    @Option(help: "Sender processes (1...32).") var senders = 2
    @Option(help: "Real-time signals to queue in all (split between the senders).") var count = 50_000
    @Option(help: "Each sender sends a standard signal after every N real-time ones (0: only in the handshake).")
    var standardEvery = 4
    @Option(help: "Signals per second per sender (0: flat out).") var rate: Double = 0
    @Option(help: ArgumentHelp(
        "Real-time signals each sender may have in flight (sent, not yet taken); 0: no limit.",
        discussion: "With no limit the senders fill the kernel's queue (ulimit -i) and retry on EAGAIN. A deep queue of mixed real-time signals is slow to drain in the kernel itself: each dequeue walks the pending list."))
    var window = 512
    @Option(help: ArgumentHelp(
        "Lower the target's RLIMIT_SIGPENDING (ulimit -i) to this many once SignalCore runs, so that the queue fills quickly.",
        discussion: "The kernel compares the count of signals pending for the whole user (every process of it) with the receiving process's limit."))
    var sigpendingLimit: Int?
    @Option(help: "Worker threads in the target that take thread-directed signals.") var workers = 2
    @Option(help: "Churn threads in the target: each keeps creating short-lived threads that allocate.") var churn = 1
    @Option(help: "Allocations per short-lived churn thread.") var churnAllocations = 2000
    @Flag(inversion: .prefixedNo, help: "Send to the wait thread and to workers too, not only to the process.")
    var threadDirected = true
    @Option(help: "Seconds the whole run may take before it counts as a hang.") var timeout: Double = 600
    @Flag(help: "Print progress every second (on by default from 100 000 signals).") var progress = false
    @Flag(help: "End with one JSON line (for tests and scripts).") var json = false
    @Option(help: "Testing the checker: the target throws away every Nth record (0: never).") var injectLoseEvery = 0

    func validate() throws {
        guard (1...StressValue.maxSenders).contains(senders) else { throw ValidationError("--senders must be 1...32") }
        guard count >= 0, count / senders < StressValue.maxSequence - 64 else { throw ValidationError("--count too large") }
        guard (0...64).contains(churn) else { throw ValidationError("--churn must be 0...64") }
    }

    func run() throws {
        // A child that died must not take us with it when we write to its stdin.
        signal(SIGPIPE, SIG_IGN)
        let started = monotonicNow()
        let deadline = started + Int64(timeout * 1e9)
        let directory = "/tmp/signalcore-stress-\(getpid())"
        mkdir(directory, 0o700)
        defer {
            unlink(directory + "/shared")
            unlink(directory + "/records")
            rmdir(directory)
        }
        guard let page = cstress_map(directory + "/shared", 1) else { throw ValidationError("cannot create the shared page") }
        var problems: [String] = []

        let target = try start([
            "target", "--shm", directory + "/shared", "--records", directory + "/records", "--workers", "\(workers)",
            "--churn", "\(churn)", "--churn-allocations", "\(churnAllocations)", "--inject-lose-every", "\(injectLoseEvery)",
            "--timeout", "\(timeout)",
        ] + (sigpendingLimit.map { ["--sigpending-limit", "\($0)"] } ?? []))
        var targetScan = 0
        guard let ready = nextLine(of: target, startingWith: "READY", deadline: min(deadline, monotonicNow() + 30_000_000_000),
                                   scanned: &targetScan)
        else {
            let ended = target.exitIfEnded()
            return finish(nil, problems: ["target never became ready (\(ended.map { "\($0)" } ?? "killed"))"], started: started)
        }
        let info = fields(ready)

        var senderProcesses: [SpawnedProcess] = []
        for id in 0..<senders {
            let share = count / senders + (id < count % senders ? 1 : 0)
            senderProcesses.append(try start([
                "sender", "--id", "\(id)", "--target", info["pid"] ?? "0", "--waiter", info["waiter"] ?? "0",
                "--workers", info["workers"] ?? "", "--count", "\(share)", "--standard-every", "\(standardEvery)",
                "--rate", "\(rate)", "--window", "\(window)", threadDirected ? "--thread-directed" : "--no-thread-directed", "--shm", directory + "/shared",
            ]))
        }
        var scans = [Int](repeating: 0, count: senders)

        // Main phase, with progress.
        let showProgress = progress || count >= 100_000
        var lastProgress = monotonicNow()
        for (i, s) in senderProcesses.enumerated() {
            while true {
                let step = min(deadline, monotonicNow() + 1_000_000_000)
                if let line = nextLine(of: s, startingWith: "MAIN-DONE", deadline: step, scanned: &scans[i]) {
                    if fields(line)["error"] != "0" { problems.append("sender \(i): \(line)") }
                    break
                }
                let ended = s.exitIfEnded()
                if monotonicNow() >= deadline || ended != nil {
                    problems.append("sender \(i) did not finish its main phase (\(ended.map { "\($0)" } ?? "hang"))")
                    break
                }
                if showProgress, monotonicNow() - lastProgress >= 1_000_000_000 {
                    lastProgress = monotonicNow()
                    let sent = (0..<senders).map { cstress_sent(page, CInt($0)) }.reduce(0, +)
                    let retries = (0..<senders).map { cstress_retries(page, CInt($0)) }.reduce(0, +)
                    printError("[stress] \(Int((Double(lastProgress - started) / 1e9).rounded())) s: sent \(sent)/\(count) real-time, "
                        + "EAGAIN retries \(retries), target took \(cstress_load(&page.pointee.records_seen)) records")
                }
            }
        }

        // Handshakes, one sender at a time, after every sender finished its main phase.
        var reports: [StressSenderReport] = []
        for (i, s) in senderProcesses.enumerated() {
            try? s.write(line: "go")
            if let line = nextLine(of: s, startingWith: "SENDER", deadline: deadline, scanned: &scans[i]),
               let report = Sender.parseReport(line) {
                reports.append(report)
            } else {
                problems.append("sender \(i) sent no report")
            }
            let status = end(s, deadline: min(deadline, monotonicNow() + 10_000_000_000))
            if status != .exited(0) { problems.append("sender \(i): \(status)") }
        }

        try? target.write(line: "finish")
        let summaryLine = nextLine(of: target, startingWith: "SUMMARY", deadline: min(deadline, monotonicNow() + 120_000_000_000),
                                   scanned: &targetScan)
        let targetStatus = end(target, deadline: min(deadline, monotonicNow() + 20_000_000_000))
        if targetStatus != .exited(0) { problems.append("target: \(targetStatus)") }
        guard let summaryLine else {
            problems.append("target sent no summary")
            return finish(nil, problems: problems, started: started)
        }
        let summary = fields(summaryLine)
        var counts: [Int32: SignalCounts] = [:]
        for item in (summary["counts"] ?? "").split(separator: ",") {
            let p = item.split(separator: ":").compactMap { UInt64($0) }
            guard p.count == 5 else { continue }
            counts[Int32(p[0])] = SignalCounts(delivered: p[1], viaWaitThread: p[2], viaHandler: p[3], droppedRecords: p[4])
        }
        let targetReport = StressTargetReport(
            waitThreadID: Int32(summary["waiter"] ?? "") ?? 0,
            workerThreadIDs: (summary["workers"] ?? "").split(separator: ",").compactMap { Int32($0) },
            counts: counts, subscriptionDropped: UInt64(summary["subdropped"] ?? "") ?? 0,
            pendingAtEnd: UInt64(summary["pending"] ?? "") ?? 0, churnThreads: UInt64(summary["churn"] ?? "") ?? 0)
        let records = StressRecord.decode(Run.readFile(directory + "/records"))
        let result = StressChecker(realtimeMinimum: StressSignals.rt).check(records: records, senders: reports, target: targetReport)
        var extra = ["target: wait thread \(targetReport.waitThreadID), workers \(targetReport.workerThreadIDs), "
            + "\(targetReport.churnThreads) short-lived churn threads"]
        if injectLoseEvery > 0 { extra.append("INJECTED: the target threw away every \(injectLoseEvery)th record") }
        finish(result, problems: problems, started: started, extra: extra)
    }

    /// Starts one of this program's own commands (`target`, `sender`) as a child process: its standard input a
    /// pipe for the orchestrator's commands, its standard output read here, its standard error shared.
    func start(_ arguments: [String]) throws -> SpawnedProcess {
        try SpawnedProcess(Run.executablePath(), arguments, standardInput: .pipe, signalQueue: nil)
    }

    /// The next line of `child`'s output from line `scanned` on that starts with `prefix`, or nil when the child
    /// closed its output or `deadline` (CLOCK_MONOTONIC ns) passed. Moves `scanned` past what it read.
    func nextLine(of child: SpawnedProcess, startingWith prefix: String, deadline: Int64, scanned: inout Int) -> String? {
        let left = Duration.nanoseconds(max(deadline - monotonicNow(), 0))
        guard let found = try? child.awaitLine(from: scanned, timeout: left, what: "starting with \(prefix)",
                                               where: { $0.hasPrefix(prefix) })
        else {
            scanned = child.lines.count
            return nil
        }
        scanned = found.index + 1
        return found.line
    }

    /// How `child` ended, waiting until `deadline` (CLOCK_MONOTONIC ns) and killing it then.
    func end(_ child: SpawnedProcess, deadline: Int64) -> ProcessExit {
        (try? child.finish(timeout: .nanoseconds(max(deadline - monotonicNow(), 0)))) ?? .signalled(SIGKILL)
    }

    func finish(_ result: StressChecker.Result?, problems: [String], started: Int64, extra: [String] = []) {
        let elapsed = Double(monotonicNow() - started) / 1e9
        var violations = problems.count
        if let result {
            print(result.render(name: { Signal($0).description }, elapsedSeconds: elapsed, extra: extra + problems.map { "PROBLEM: \($0)" }))
            violations += result.violations.map(\.count).reduce(0, +)
            if !problems.isEmpty, result.ok { print("RESULT: FAIL (\(problems.count) process problems)") }
        } else {
            for p in problems { print("PROBLEM: \(p)") }
            print("RESULT: FAIL (the run did not complete)")
        }
        if json {
            let rules = (result?.violations ?? []).map { "\"\(Run.escape($0.rule))\":\($0.count)" } + problems.enumerated().map { "\"process problem \($0.offset)\":1" }
            print("{\"ok\":\(violations == 0),\"violations\":\(violations),\"realtime_expected\":\(result?.realtimeExpected ?? 0),"
                + "\"realtime_received\":\(result?.realtimeReceived ?? 0),\"handshakes_verified\":\(result?.handshakesVerified ?? 0),"
                + "\"handshakes\":\(result?.handshakesTotal ?? 0),\"retries\":\(result?.retries ?? 0),\"rules\":{\(rules.joined(separator: ","))}}")
        }
        fflush(nil)
        if violations > 0 { Glibc.exit(1) }
    }

    static func escape(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "'") }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    static func readFile(_ path: String) -> [UInt8] {
        guard let f = fopen(path, "r") else { return [] }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
