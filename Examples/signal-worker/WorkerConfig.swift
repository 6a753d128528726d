import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The worker's JSON config file, reloaded on SIGHUP:
/// `{"name": "signal-worker", "concurrency": 4, "job_delay_ms": 50, "log_level": "info"}`.
struct WorkerConfig: Codable, Sendable, Equatable {
    /// Shown in logs, stats and result files.
    var name: String
    /// Worker threads processing jobs at once (1...64).
    var concurrency: Int
    /// Simulated work per job, in milliseconds (0...600000).
    var jobDelayMs: Int
    /// debug (one line per job), info, warning or error.
    var logLevel: String

    enum CodingKeys: String, CodingKey {
        case name, concurrency
        case jobDelayMs = "job_delay_ms"
        case logLevel = "log_level"
    }

    static let maximumConcurrency = 64
    static let `default` = WorkerConfig(name: "signal-worker", concurrency: 4, jobDelayMs: 50, logLevel: "info")

    var level: LogLevel { LogLevel(rawValue: logLevel) ?? .info }

    /// Refuses values out of range, with the reason.
    func validate() throws {
        if name.isEmpty { throw ConfigRejection("name must not be empty") }
        if !(1...WorkerConfig.maximumConcurrency).contains(concurrency) {
            throw ConfigRejection("concurrency must be in 1...\(WorkerConfig.maximumConcurrency), not \(concurrency)")
        }
        if !(0...600_000).contains(jobDelayMs) {
            throw ConfigRejection("job_delay_ms must be in 0...600000, not \(jobDelayMs)")
        }
        if LogLevel(rawValue: logLevel) == nil {
            let names = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigRejection("log_level must be one of \(names), not \"\(logLevel)\"")
        }
    }

    /// The file's text: pretty JSON, keys in a fixed order.
    var json: String {
        """
        {
          "name": "\(name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))",
          "concurrency": \(concurrency),
          "job_delay_ms": \(jobDelayMs),
          "log_level": "\(logLevel)"
        }

        """
    }

    /// Writes the default config to `path` (which must not exist yet: O_EXCL). Returns nil or the error.
    static func writeDefault(to path: String) -> String? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { return "open: \(String(cString: strerror(errno))) (errno: \(errno))" }
        writeAll(fd, WorkerConfig.default.json)
        fsync(fd)
        close(fd)
        return nil
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
