import ChildProcessTesting
import Foundation

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
