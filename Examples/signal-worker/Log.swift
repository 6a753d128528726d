import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Log levels of the worker's config, lowest first.
enum LogLevel: String, CaseIterable, Comparable, Sendable {
    case debug, info, warning, error

    static func < (a: LogLevel, b: LogLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Log lines on standard error: "[level] message", each written with one write(2) so that lines from
/// different threads never interleave. The level follows the reloadable config.
enum Log {
    private static let threshold = Atomic<Int>(1)

    static func setLevel(_ level: LogLevel) { threshold.store(LogLevel.allCases.firstIndex(of: level)!, ordering: .relaxed) }

    static func enabled(_ level: LogLevel) -> Bool {
        LogLevel.allCases.firstIndex(of: level)! >= threshold.load(ordering: .relaxed)
    }

    static func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }
    static func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    static func warning(_ message: @autoclosure () -> String) { emit(.warning, message) }
    static func error(_ message: @autoclosure () -> String) { emit(.error, message) }

    private static func emit(_ level: LogLevel, _ message: () -> String) {
        guard enabled(level) else { return }
        writeAll(2, "[\(level.rawValue)] \(message())\n")
    }
}

/// Writes the whole string to `fd`, retrying short writes and EINTR.
func writeAll(_ fd: CInt, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}
