import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One run of a helper executable (built beside the test bundle) in its own process: every scenario changes
/// process-wide signal state, so none runs in the test process. Output is `key=value` words, `PASS …` and
/// `FAIL …` lines; the test asserts from here.
final class Scenario {
    enum Exit: Equatable, CustomStringConvertible {
        case exited(CInt)
        case signalled(CInt)
        var description: String {
            switch self {
            case .exited(let code): return "exit \(code)"
            case .signalled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    let pid: pid_t
    private let output: CInt
    private var buffer: [UInt8] = []
    private(set) var lines: [String] = []
    private var ended: Exit?

    static func path(of executable: String) -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent(executable).path
    }

    /// Starts `executable` with `arguments`; stdout (and stderr) come to us through a pipe. The child starts with
    /// an empty mask and default dispositions whatever this process has (it spawns with both reset).
    init(_ executable: String, _ arguments: [String]) throws {
        let path = Scenario.path(of: executable)
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let err = posix_spawn(&child, path, &actions, &attributes, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(fds[1])
        guard err == 0 else {
            close(fds[0])
            throw POSIXError(.init(rawValue: err)!)
        }
        pid = child
        output = fds[0]
    }

    deinit {
        if ended == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        close(output)
    }

    /// Reads until a line starts with `prefix`; throws after `timeout`.
    @discardableResult
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var scanned = 0
        while true {
            if let line = lines[scanned...].first(where: { $0.hasPrefix(prefix) }) { return line }
            scanned = lines.count
            guard try readMore(until: deadline) else { throw ScenarioError.missing(prefix, lines) }
        }
    }

    /// Reads everything and reaps the process; kills it and throws after `timeout`.
    func finish(timeout: Duration) throws -> Exit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw ScenarioError.timedOut(lines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit: Exit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        ended = exit
        return exit
    }

    private func readMore(until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            var fd = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ms = CInt(min(left.components.seconds * 1000 + 1, 60_000))
            let ready = poll(&fd, 1, ms)
            if ready < 0 { if errno == EINTR { continue }; throw POSIXError(.init(rawValue: errno)!) }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(output, &chunk, chunk.count)
            if n <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            while let newline = buffer.firstIndex(of: 10) {
                lines.append(String(decoding: buffer[..<newline], as: UTF8.self))
                buffer.removeSubrange(...newline)
            }
            return true
        }
    }

    /// `key=value` words of every line (a later line wins).
    var values: [String: String] {
        var result: [String: String] = [:]
        for line in lines {
            for word in line.split(separator: " ") {
                let parts = word.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
            }
        }
        return result
    }

    func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }
    var failures: [String] { lines.filter { $0.hasPrefix("FAIL") } }
    var passes: [String] { lines.filter { $0.hasPrefix("PASS") } }
    var transcript: String { lines.joined(separator: "\n") }

    /// Runs a scenario that needs nothing from the parent.
    static func run(_ executable: String = "SignalCoreVerifyHelper", _ arguments: [String],
                    timeout: Duration = .seconds(120)) throws -> (Scenario, Exit) {
        let scenario = try Scenario(executable, arguments)
        let exit = try scenario.finish(timeout: timeout)
        return (scenario, exit)
    }
}

enum ScenarioError: Error, CustomStringConvertible {
    case missing(String, [String])
    case timedOut([String])
    var description: String {
        switch self {
        case .missing(let prefix, let lines): return "no line starting with \(prefix):\n" + lines.joined(separator: "\n")
        case .timedOut(let lines): return "scenario timed out:\n" + lines.joined(separator: "\n")
        }
    }
}

/// The package root (this file is Tests/SignalCoreSafetyTests/Helper.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
