import ChildProcessTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Starts the built `signal-worker` with `arguments`; it logs to standard error, which is read apart from its
/// standard output (the stats lines).
func startWorker(_ arguments: [String]) throws -> SpawnedProcess {
    try SpawnedProcess("signal-worker", arguments, standardError: .separate)
}

/// Runs `command` with /bin/sh -c, its standard error read apart from its standard output.
func startShell(_ command: String) throws -> SpawnedProcess {
    try SpawnedProcess("/bin/sh", ["-c", command], standardError: .separate)
}

extension SpawnedProcess {
    /// Sends `signal` (a name, like TERM) with the `kill` command, as an operator would.
    func killCommand(_ signal: String) throws {
        let kill = try startShell("kill -\(signal) \(pid)")
        let exit = try kill.finish(timeout: .seconds(30))
        if exit != .exited(0) { throw ChildError.commandFailed("kill -\(signal) \(pid)", exit.description) }
    }
}

enum ChildError: Error, CustomStringConvertible {
    case commandFailed(String, String)
    var description: String {
        switch self {
        case .commandFailed(let command, let exit): return "\(command): \(exit)"
        }
    }
}

/// A fresh spool directory for one test, removed afterwards.
final class TemporarySpool {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/lifecycle-test.XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw POSIXError(.init(rawValue: errno)!) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    var config: String { path + "/config.json" }

    /// Writes a config file.
    func writeConfig(name: String = "test-worker", concurrency: Int = 2, jobDelayMs: Int = 50,
                     logLevel: String = "debug", to file: String? = nil) throws {
        let text = "{\"name\": \"\(name)\", \"concurrency\": \(concurrency), \"job_delay_ms\": \(jobDelayMs), \"log_level\": \"\(logLevel)\"}\n"
        try text.write(toFile: file ?? config, atomically: true, encoding: .utf8)
    }

    func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path + "/" + dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    func ids(_ dir: String) -> [String] {
        files(dir).compactMap { name in
            if name.hasSuffix(".job") { return String(name.dropLast(4)) }
            if name.hasSuffix(".result") { return String(name.dropLast(7)) }
            return nil
        }
    }
}

/// Job ids named in lines like "[debug] job done job-000003 worker=1 ms=52".
func jobIDs(_ lines: [String], _ event: String) -> [String] {
    lines.compactMap { line in
        guard let range = line.range(of: event + " ") else { return nil }
        return line[range.upperBound...].split(separator: " ").first.map(String.init)
    }
}

/// The threads of process `pid` now, from /proc.
func threadIDs(of pid: pid_t) -> Set<CInt> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return Set(names.compactMap { CInt($0) })
}

/// One thread as `/proc/PID/task/TID/status` shows it: its name, how often it went to sleep (voluntary context
/// switches: each one is a wake-up later) and how often it was preempted while running (involuntary ones).
struct ThreadActivity: Equatable, CustomStringConvertible {
    var name: String
    /// The state letter: S while it sleeps, R while it runs or is about to.
    var state: String
    var voluntary: Int
    var involuntary: Int

    var description: String { "\(name) voluntary=\(voluntary) involuntary=\(involuntary)" }
}

/// Every thread of process `pid` now, by thread id.
func threadActivity(of pid: pid_t) -> [pid_t: ThreadActivity] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    var result: [pid_t: ThreadActivity] = [:]
    for task in tasks {
        guard let tid = pid_t(task),
              let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)
        else { continue }
        var activity = ThreadActivity(name: "", state: "?", voluntary: -1, involuntary: -1)
        for line in status.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            switch parts[0] {
            case "Name": activity.name = value
            case "State": activity.state = String(value.prefix(1))
            case "voluntary_ctxt_switches": activity.voluntary = Int(value) ?? -1
            case "nonvoluntary_ctxt_switches": activity.involuntary = Int(value) ?? -1
            default: break
            }
        }
        result[tid] = activity
    }
    return result
}

/// Lets `duration` pass (restarting after EINTR). The observation window of an idle measurement: what is
/// measured is that nothing happens in it, so it is never a way to wait for something.
func observe(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var window = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var left = timespec()
    for _ in 0..<1000 {
        if nanosleep(&window, &left) == 0 || errno != EINTR { return }
        window = left
    }
}

/// Waits until every thread of `pid` sleeps (state S), so that a measurement does not count a thread that was
/// still on its way to its first sleep (a log line written just before it, say). Looks every millisecond; throws
/// after `timeout`.
func waitUntilAsleep(_ pid: pid_t, timeout: Duration = .seconds(20)) throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let threads = threadActivity(of: pid)
        if !threads.isEmpty, threads.values.allSatisfy({ $0.state == "S" }) { return }
        guard ContinuousClock.now < deadline else { throw IdleMeasurementError.neverAsleep(threads) }
        var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        nanosleep(&pause, nil)
    }
}

enum IdleMeasurementError: Error {
    case neverAsleep([pid_t: ThreadActivity])
}

/// Watches process `pid` for `window`, during which nobody sends it anything, and checks that its threads are
/// exactly `expected` (by name, each as often as listed) and that none of them went to sleep again, which it
/// would have to after any wake-up. The window starts once every thread sleeps. Prints each thread's numbers.
func expectNoWakeUps(of pid: pid_t, over window: Duration, threads expected: [String]) throws {
    try waitUntilAsleep(pid)
    let before = threadActivity(of: pid)
    observe(for: window)
    let after = threadActivity(of: pid)
    for tid in before.keys.sorted() {
        let b = before[tid]!
        let a = after[tid]
        print("idle \(pid) tid \(tid) \(b.name): voluntary \(b.voluntary) -> \(a.map { String($0.voluntary) } ?? "gone"), "
              + "involuntary \(b.involuntary) -> \(a.map { String($0.involuntary) } ?? "gone")")
    }
    #expect(before.values.map(\.name).sorted() == expected.sorted(), "threads: \(before)")
    #expect(Set(after.keys) == Set(before.keys), "threads came or went: before \(before), after \(after)")
    for (tid, b) in before {
        guard let a = after[tid] else { continue }
        #expect(a.voluntary == b.voluntary, "\(b.name) (tid \(tid)) woke \(a.voluntary - b.voluntary) times in \(window)")
    }
}
