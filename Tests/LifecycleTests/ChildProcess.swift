import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A child process with its standard output and standard error read separately, line by line.
///
/// Adapted from SignalCoreTests' HelperProcess: the child starts with an empty signal mask and default
/// dispositions whatever this test process has, every wait has a deadline, and the deinit kills and reaps a
/// child the test did not finish.
final class ChildProcess {
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

    enum Stream { case stdout, stderr }

    let pid: pid_t
    private var fds: [CInt]
    private var pending: [Data] = [Data(), Data()]
    private(set) var stdoutLines: [String] = []
    private(set) var stderrLines: [String] = []
    private var reaped: Exit?

    /// A sibling executable of the test bundle (built products share one directory).
    static func builtProduct(_ name: String) -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name).path
    }

    static var worker: String { builtProduct("signal-worker") }
    static var helper: String { builtProduct("LifecycleTestHelper") }

    init(_ executable: String, _ arguments: [String]) throws {
        var out: [CInt] = [0, 0], err: [CInt] = [0, 0]
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        for fd in [out[0], out[1], err[0], err[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
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
        let spawnError = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(out[1])
        close(err[1])
        guard spawnError == 0 else {
            close(out[0])
            close(err[0])
            throw POSIXError(.init(rawValue: spawnError)!)
        }
        pid = child
        fds = [out[0], err[0]]
    }

    /// Runs `command` with /bin/sh -c.
    static func shell(_ command: String) throws -> ChildProcess {
        try ChildProcess("/bin/sh", ["-c", command])
    }

    deinit {
        if reaped == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        for fd in fds where fd >= 0 { close(fd) }
    }

    func lines(_ stream: Stream) -> [String] { stream == .stdout ? stdoutLines : stderrLines }

    /// Reads until a line of `stream` containing `text` arrives (searching from line `from`); fails after
    /// `timeout`. Returns the line and its index.
    @discardableResult
    func waitForLine(containing text: String, in stream: Stream = .stderr, from: Int = 0,
                     timeout: Duration = .seconds(60)) throws -> (line: String, index: Int) {
        let deadline = ContinuousClock.now + timeout
        var scanned = from
        while true {
            let current = lines(stream)
            if scanned < current.count, let i = current[scanned...].firstIndex(where: { $0.contains(text) }) {
                return (current[i], i)
            }
            scanned = max(scanned, current.count)
            guard try readMore(until: deadline) else {
                throw ChildError.missingLine(text, stdout: stdoutLines, stderr: stderrLines)
            }
        }
    }

    /// Reads all output and waits for the process to end; kills it and fails after `timeout`.
    func finish(timeout: Duration = .seconds(90)) throws -> Exit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw ChildError.timedOut(stdout: stdoutLines, stderr: stderrLines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit: Exit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        reaped = exit
        return exit
    }

    /// Returns false once both streams ended, or at the deadline.
    private func readMore(until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let open = (0..<2).filter { fds[$0] >= 0 }
            if open.isEmpty { return false }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            var polled = open.map { pollfd(fd: fds[$0], events: Int16(POLLIN), revents: 0) }
            let ms = CInt(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&polled, nfds_t(polled.count), ms)
            if ready < 0 { if errno == EINTR { continue }; throw POSIXError(.init(rawValue: errno)!) }
            if ready == 0 { continue }
            for (slot, index) in open.enumerated() where polled[slot].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = read(fds[index], &buffer, buffer.count)
                if n <= 0 {
                    close(fds[index])
                    fds[index] = -1
                    continue
                }
                pending[index].append(contentsOf: buffer[0..<n])
                while let newline = pending[index].firstIndex(of: 10) {
                    let line = String(decoding: pending[index][pending[index].startIndex..<newline], as: UTF8.self)
                    if index == 0 { stdoutLines.append(line) } else { stderrLines.append(line) }
                    pending[index].removeSubrange(pending[index].startIndex...newline)
                }
            }
            return true
        }
    }

    /// Sends `signal` with the `kill` command, as an operator would.
    func killCommand(_ signal: String) throws {
        let kill = try ChildProcess.shell("kill -\(signal) \(pid)")
        let exit = try kill.finish(timeout: .seconds(30))
        if exit != .exited(0) { throw ChildError.commandFailed("kill -\(signal) \(pid)", exit.description) }
    }

    /// `key=value` pairs from the stderr lines that have them (later lines win).
    func values(in stream: Stream = .stderr) -> [String: String] {
        var result: [String: String] = [:]
        for line in lines(stream) {
            for word in line.split(separator: " ") {
                let parts = word.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
            }
        }
        return result
    }

    var failures: [String] { stdoutLines.filter { $0.hasPrefix("FAIL") } }
}

enum ChildError: Error, CustomStringConvertible {
    case missingLine(String, stdout: [String], stderr: [String])
    case timedOut(stdout: [String], stderr: [String])
    case commandFailed(String, String)
    var description: String {
        switch self {
        case .missingLine(let text, let out, let err):
            return "no line containing \(text); stdout:\n" + out.joined(separator: "\n") + "\nstderr:\n" + err.joined(separator: "\n")
        case .timedOut(let out, let err):
            return "child timed out; stdout:\n" + out.joined(separator: "\n") + "\nstderr:\n" + err.joined(separator: "\n")
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
