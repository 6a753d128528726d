import Foundation
import SignalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A scenario of SignalCoreIntegrationHelper in its own process, started with an empty signal mask and default
/// dispositions whatever this test process has. The test sends signals to it and asserts on its output lines
/// and exit status. Every wait is bounded.
final class IntegrationProcess {
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
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []
    private var reaped = false

    /// A product built beside the test bundle.
    static func executable(_ name: String) -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Starts `program` with `arguments`. Its standard output is read by the test; its standard error too when
    /// `captureStandardError` is set (mixed into the same lines), otherwise it goes to the test's.
    init(_ arguments: [String], program: String = "SignalCoreIntegrationHelper", captureStandardError: Bool = false) throws {
        let executable = IntegrationProcess.executable(program)
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        if captureStandardError { posix_spawn_file_actions_adddup2(&actions, fds[1], 2) }
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
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let err = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
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
        if !reaped {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        close(output)
    }

    /// Reads until a line starting with `prefix` arrives after the first `after` lines; throws after `timeout`.
    @discardableResult
    func waitForLine(_ prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var scanned = 0
        while true {
            if let line = lines[scanned...].first(where: { $0.hasPrefix(prefix) }) { return line }
            scanned = lines.count
            guard try readMore(until: deadline) else { throw ScenarioError.missingLine(prefix, output: lines) }
        }
    }

    /// Reads all output and reaps the process; kills it and throws after `timeout`.
    func finish(timeout: Duration = .seconds(60)) throws -> Exit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw ScenarioError.timedOut(output: lines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
        return (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
    }

    /// False at end of output or at the deadline.
    private func readMore(until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            var fd = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ms = CInt(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&fd, 1, ms)
            if ready < 0 {
                if errno == EINTR { continue }
                throw POSIXError(.init(rawValue: errno)!)
            }
            if ready == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = read(output, &buffer, buffer.count)
            if n <= 0 { return false }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: 10) {
                lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
            return true
        }
    }

    /// Sends `signal` with kill(2).
    func send(_ signal: CInt) throws {
        if kill(pid, signal) != 0 { throw POSIXError(.init(rawValue: errno)!) }
    }

    /// Queues `signal` with `value` (sigqueue), retrying while the kernel's queue is full, up to 10 s.
    func queue(_ signal: CInt, value: CInt) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            var sv = sigval()
            sv.sival_int = value
            if sigqueue(pid, signal, sv) == 0 { return }
            guard errno == EAGAIN, ContinuousClock.now < deadline else { throw POSIXError(.init(rawValue: errno)!) }
            sched_yield()
        }
    }

    /// Lines starting with `prefix`.
    func lines(_ prefix: String) -> [String] { lines.filter { $0.hasPrefix(prefix) } }

    var failures: [String] { lines("FAIL") }
}

/// `key=value` pairs of one line.
func fields(_ line: String) -> [String: String] {
    var result: [String: String] = [:]
    for word in line.split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
    }
    return result
}

enum ScenarioError: Error, CustomStringConvertible {
    case missingLine(String, output: [String])
    case timedOut(output: [String])
    var description: String {
        switch self {
        case .missingLine(let prefix, let output):
            return "no line starting with \(prefix); output:\n" + output.joined(separator: "\n")
        case .timedOut(let output): return "helper timed out; output:\n" + output.joined(separator: "\n")
        }
    }
}

/// SIGRTMIN + `offset`, as the C library defines it.
func realtime(_ offset: Int) -> CInt { Signal.realtime(offset).rawValue }
