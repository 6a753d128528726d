import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A scenario of SignalCoreTestHelper running in its own process: signal state is process-global, so every
/// scenario that starts the engine or changes dispositions runs in a child and the tests assert from here.
final class HelperProcess {
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
    private let outputFD: CInt
    private var pending = Data()
    private(set) var lines: [String] = []
    private var reaped: Exit?

    /// The helper executable, built beside the test bundle.
    static var executable: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("SignalCoreTestHelper").path
    }

    init(_ arguments: [String], executable: String = HelperProcess.executable) throws {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The child starts with an empty mask and default dispositions, whatever this test process has.
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
        outputFD = fds[0]
    }

    deinit {
        if reaped == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        close(outputFD)
    }

    /// Reads output until a line starting with `prefix` arrives; fails after `timeout`.
    @discardableResult
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var scanned = 0
        while true {
            if let line = lines[scanned...].first(where: { $0.hasPrefix(prefix) }) { return line }
            scanned = lines.count
            guard try readMore(until: deadline) else {
                throw HelperError.missingLine(prefix, output: lines)
            }
        }
    }

    /// Reads all output and waits for the process to end; kills it and fails after `timeout`.
    func finish(timeout: Duration = .seconds(60)) throws -> Exit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw HelperError.timedOut(output: lines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit: Exit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        reaped = exit
        return exit
    }

    /// Returns false at end of output or at the deadline.
    private func readMore(until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            var fd = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let ms = CInt(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&fd, 1, ms)
            if ready < 0 { if errno == EINTR { continue }; throw POSIXError(.init(rawValue: errno)!) }
            if ready == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = read(outputFD, &buffer, buffer.count)
            if n <= 0 { return false }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: 10) {
                lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
            return true
        }
    }

    /// `key=value` pairs from every line that has them.
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

    func value(_ key: String) -> String? { values[key] }
    func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }

    var failures: [String] { lines.filter { $0.hasPrefix("FAIL") } }
    var passes: [String] { lines.filter { $0.hasPrefix("PASS") } }

    /// Runs a scenario that needs nothing from the parent; returns it finished.
    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (HelperProcess, Exit) {
        let helper = try HelperProcess(arguments)
        let exit = try helper.finish(timeout: timeout)
        return (helper, exit)
    }
}

enum HelperError: Error, CustomStringConvertible {
    case missingLine(String, output: [String])
    case timedOut(output: [String])
    var description: String {
        switch self {
        case .missingLine(let prefix, let output): return "no line starting with \(prefix); output:\n" + output.joined(separator: "\n")
        case .timedOut(let output): return "helper timed out; output:\n" + output.joined(separator: "\n")
        }
    }
}

/// Queues `signal` with `value` to `pid`, retrying while the kernel's queue is full (bounded by `deadline`).
/// Returns how many EAGAIN retries it took.
@discardableResult
func queueSignal(_ signal: CInt, to pid: pid_t, value: CInt, deadline: ContinuousClock.Instant) throws -> Int {
    var retries = 0
    while true {
        var sv = sigval()
        sv.sival_int = value
        if sigqueue(pid, signal, sv) == 0 { return retries }
        guard errno == EAGAIN, ContinuousClock.now < deadline else { throw POSIXError(.init(rawValue: errno)!) }
        retries += 1
        sched_yield()
    }
}
