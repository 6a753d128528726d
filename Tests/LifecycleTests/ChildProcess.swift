import ChildProcessTesting
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process with its standard output and standard error read separately, line by line. The spawning
/// (empty signal mask, default dispositions), the bounded reads and the kill-and-reap of a child the test did not
/// finish are ChildProcessTesting's; this adds the programs, the timeouts and `kill` as an operator types it.
final class ChildProcess: SpawnedProcess {
    typealias Exit = ProcessExit

    static var worker: String { builtProduct("signal-worker") }
    static var helper: String { builtProduct("LifecycleTestHelper") }

    convenience init(_ executable: String, _ arguments: [String]) throws {
        try self.init(executable: executable, arguments: arguments, standardError: .separate)
    }

    /// Runs `command` with /bin/sh -c.
    static func shell(_ command: String) throws -> ChildProcess {
        try ChildProcess("/bin/sh", ["-c", command])
    }

    var stdoutLines: [String] { lines }
    var stderrLines: [String] { errorLines }

    /// Reads until a line of `stream` containing `text` arrives (searching from line `from`); fails after
    /// `timeout`. Returns the line and its index.
    @discardableResult
    func waitForLine(containing text: String, in stream: Stream = .stderr, from: Int = 0,
                     timeout: Duration = .seconds(60)) throws -> (line: String, index: Int) {
        try awaitLine(in: stream, from: from, timeout: timeout, what: "containing \(text)") {
            $0.contains(text)
        }
    }

    /// Reads all output and waits for the process to end; kills it and fails after `timeout`.
    func finish(timeout: Duration = .seconds(90)) throws -> Exit { try finish(within: timeout) }

    /// Sends `signal` with the `kill` command, as an operator would.
    func killCommand(_ signal: String) throws {
        let kill = try ChildProcess.shell("kill -\(signal) \(pid)")
        let exit = try kill.finish(timeout: .seconds(30))
        if exit != .exited(0) { throw ChildError.commandFailed("kill -\(signal) \(pid)", exit.description) }
    }

    /// `key=value` pairs from the stderr lines that have them (later lines win).
    func values() -> [String: String] { values(in: .stderr) }
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
