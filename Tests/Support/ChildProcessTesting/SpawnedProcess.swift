import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests and tools: spawned with an empty signal mask and default dispositions whatever the
/// spawning thread has, its standard output (and optionally standard error) read line by line through pipes, its
/// standard input `/dev/null` or a pipe. Every read has a deadline; ``finish(timeout:)`` kills a child that
/// outlives its timeout, and `deinit` kills and reaps a child nobody finished.
public final class SpawnedProcess {
    /// Where the child's standard error goes.
    public enum StandardError: Sendable {
        /// The test process's own standard error.
        case inherited
        /// The same pipe as standard output: its lines mix into ``lines``.
        case mergedWithOutput
        /// A pipe of its own: its lines go to ``errorLines``.
        case separate
    }

    /// Where the child's standard input comes from.
    public enum StandardInput: Sendable {
        /// `/dev/null`.
        case null
        /// A pipe that ``write(line:)`` writes to.
        case pipe
    }

    /// One of the child's output streams.
    public enum Stream: Sendable { case stdout, stderr }

    /// The child's process id; ours to signal until it is reaped.
    public let pid: pid_t
    /// Read ends: [stdout, stderr]; -1 once a stream ended (or when stderr is not captured separately).
    private var fds: [CInt]
    /// Write end of the child's standard input under ``StandardInput/pipe``, else -1.
    private let input: CInt
    private var pending: [[UInt8]] = [[], []]
    /// Lines of standard output (with standard error mixed in under ``StandardError/mergedWithOutput``).
    public private(set) var lines: [String] = []
    /// Lines of standard error under ``StandardError/separate``.
    public private(set) var errorLines: [String] = []
    /// Held from spawn until the child is reaped.
    private var queueLock: SignalQueueLock?

    /// How the child ended, once ``finish(within:)`` reaped it.
    public private(set) var reapedExit: ProcessExit?

    /// The path of `name` built beside the running test bundle (built products share one directory).
    public static func builtProduct(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let me = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        guard let slash = me.lastIndex(of: "/") else { return name }
        return String(me[...slash]) + name
    }

    /// Starts `program` with `arguments`: a path when it contains a slash, otherwise a program built beside the
    /// running one (``builtProduct(_:)``). Unless `signalQueue` is nil, holds the signal-queue lock (see
    /// ``SignalQueueAccess``) until the child is reaped.
    public init(_ program: String, _ arguments: [String] = [], standardInput: StandardInput = .null,
                standardError: StandardError = .inherited, signalQueue: SignalQueueAccess? = .shared) throws {
        let executable = program.contains("/") ? program : SpawnedProcess.builtProduct(program)
        queueLock = try signalQueue.map { try SignalQueueLock($0) }
        // Close-on-exec pipes: a child that a parallel test spawns later must not inherit our ends (it would
        // hold our end-of-output until it exits). dup2 in the child clears the flag on fd 0, 1 and 2. (Glibc's
        // Swift module has no pipe2; the window between pipe and fcntl is a few instructions.)
        var opened: [CInt] = []
        func closeOnExecPipe() throws -> [CInt] {
            var ends: [CInt] = [-1, -1]
            guard pipe(&ends) == 0 else {
                let code = errno
                opened.forEach { close($0) }
                throw ChildProcessError.system(call: "pipe", errno: code)
            }
            for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            opened += ends
            return ends
        }
        let out = try closeOnExecPipe()
        let err = standardError == .separate ? try closeOnExecPipe() : [-1, -1]
        let inPipe = standardInput == .pipe ? try closeOnExecPipe() : [-1, -1]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        switch standardInput {
        case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .pipe: posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        switch standardError {
        case .inherited: break
        case .mergedWithOutput: posix_spawn_file_actions_adddup2(&actions, out[1], 2)
        case .separate: posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        }
        // The child starts with an empty mask and default dispositions, whatever this process has.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        try ChildProcessSignals.configureSpawnAttributes(&attributes)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let spawnError = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        // The child's ends.
        for fd in [out[1], err[1], inPipe[0]] where fd >= 0 { close(fd) }
        guard spawnError == 0 else {
            for fd in [out[0], err[0], inPipe[1]] where fd >= 0 { close(fd) }
            throw ChildProcessError.system(call: "posix_spawn \(executable)", errno: spawnError)
        }
        pid = child
        fds = [out[0], err[0]]
        input = inPipe[1]
    }

    deinit {
        if reapedExit == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        for fd in fds + [input] where fd >= 0 { close(fd) }
    }

    /// The lines read so far from `stream`.
    public func lines(in stream: Stream) -> [String] { stream == .stdout ? lines : errorLines }

    /// Reads until a line of `stream` from index `start` on satisfies `matches`; throws
    /// ``ChildProcessError/missingLine(_:output:errorOutput:)`` (naming `what`) when the stream ends or
    /// `timeout` passes first. Returns the line and its index.
    @discardableResult
    public func awaitLine(in stream: Stream = .stdout, from start: Int = 0, timeout: Duration, what: String,
                          where matches: (String) -> Bool) throws -> (line: String, index: Int) {
        let deadline = ContinuousClock.now + timeout
        var scanned = start
        while true {
            let current = lines(in: stream)
            if scanned < current.count, let i = current[scanned...].firstIndex(where: matches) {
                return (current[i], i)
            }
            scanned = max(scanned, current.count)
            guard try readMore(until: deadline) else {
                throw ChildProcessError.missingLine(what, output: lines, errorOutput: errorLines)
            }
        }
    }

    /// Reads until a line of standard output starts with `prefix`; throws after `timeout`.
    @discardableResult
    public func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(60)) throws -> String {
        try awaitLine(timeout: timeout, what: "starting with \(prefix)") { $0.hasPrefix(prefix) }.line
    }

    /// Reads until a line of `stream` from index `start` on contains `text`; throws after `timeout`. Returns the
    /// line and its index.
    @discardableResult
    public func waitForLine(containing text: String, in stream: Stream = .stdout, from start: Int = 0,
                            timeout: Duration = .seconds(60)) throws -> (line: String, index: Int) {
        try awaitLine(in: stream, from: start, timeout: timeout, what: "containing \(text)") { $0.contains(text) }
    }

    /// Reads all output and reaps the process; kills it and throws ``ChildProcessError/timedOut(output:errorOutput:)``
    /// after `timeout`.
    public func finish(timeout: Duration = .seconds(90)) throws -> ProcessExit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if let reapedExit { return reapedExit }
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw ChildProcessError.timedOut(output: lines, errorOutput: errorLines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return reaped(ProcessExit(waitStatus: status))
    }

    /// How the process ended, if it has (reaping it), without waiting and without reading its output.
    public func exitIfEnded() -> ProcessExit? {
        if let reapedExit { return reapedExit }
        var status: CInt = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return reaped(ProcessExit(waitStatus: status))
    }

    private func reaped(_ exit: ProcessExit) -> ProcessExit {
        reapedExit = exit
        queueLock = nil
        return exit
    }

    /// Runs `program` to its end and returns it finished, with how it ended.
    public static func run(_ program: String, _ arguments: [String] = [], standardError: StandardError = .inherited,
                           timeout: Duration = .seconds(120),
                           signalQueue: SignalQueueAccess? = .shared) throws -> (SpawnedProcess, ProcessExit) {
        let process = try SpawnedProcess(program, arguments, standardError: standardError, signalQueue: signalQueue)
        let exit = try process.finish(timeout: timeout)
        return (process, exit)
    }

    /// Reads what is there; false once every captured stream ended, or at the deadline.
    private func readMore(until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let open = (0..<2).filter { fds[$0] >= 0 }
            if open.isEmpty { return false }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            var polled = open.map { pollfd(fd: fds[$0], events: Int16(POLLIN), revents: 0) }
            let ms = CInt(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&polled, nfds_t(polled.count), ms)
            if ready < 0 {
                if errno == EINTR { continue }
                throw ChildProcessError.system(call: "poll", errno: errno)
            }
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
                    let line = String(decoding: pending[index][..<newline], as: UTF8.self)
                    if index == 0 { lines.append(line) } else { errorLines.append(line) }
                    pending[index].removeSubrange(...newline)
                }
            }
            return true
        }
    }

    /// Writes `line` and a newline to the child's standard input (``StandardInput/pipe``).
    public func write(line: String) throws {
        precondition(input >= 0, "write(line:) needs standardInput: .pipe")
        let bytes = Array((line + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(input, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChildProcessError.system(call: "write", errno: errno)
            }
            written += n
        }
    }

    /// Sends `signal` with kill(2).
    public func send(_ signal: CInt) throws {
        if kill(pid, signal) != 0 { throw ChildProcessError.system(call: "kill", errno: errno) }
    }

    /// Queues `signal` with `value` (sigqueue), retrying while the kernel's queue is full, for up to `timeout`.
    public func queue(_ signal: CInt, value: CInt, timeout: Duration = .seconds(10)) throws {
        try queueSignal(signal, to: pid, value: value, deadline: .now + timeout)
    }

    /// Lines of standard output starting with `prefix`.
    public func lines(startingWith prefix: String) -> [String] { lines.filter { $0.hasPrefix(prefix) } }

    /// The helper's own failed checks: output lines starting with `FAIL`.
    public var failures: [String] { lines(startingWith: "FAIL") }
    /// The helper's own passed checks: output lines starting with `PASS`.
    public var passes: [String] { lines(startingWith: "PASS") }
    /// What became of each check in `expected`, named as the helper's `check` names it, that did not pass: it
    /// failed (with the helper's detail) or was never reported. Every other failed check is listed too, so an
    /// empty result means that each expected check passed and none failed.
    public func unmetChecks(_ expected: [String]) -> [String] {
        var passed = Set<String>()
        var failed: [(name: String, line: String)] = []
        for line in lines {
            let pass = line.hasPrefix("PASS ")
            guard pass || line.hasPrefix("FAIL ") else { continue }
            let rest = line.dropFirst(5)
            let name = String(rest.firstRange(of: " -- ").map { rest[..<$0.lowerBound] } ?? rest)
            if pass { passed.insert(name) } else { failed.append((name, line)) }
        }
        var unmet: [String] = []
        for name in expected where !passed.contains(name) {
            unmet.append(failed.first { $0.name == name }?.line ?? "never reported: \(name)")
        }
        let known = Set(expected)
        unmet += failed.filter { !known.contains($0.name) }.map(\.line)
        return unmet
    }

    /// Standard output as one text, for failure messages.
    public var transcript: String { lines.joined(separator: "\n") }

    /// `key=value` words of every line of `stream` (a later line wins).
    public func values(in stream: Stream) -> [String: String] { mergedFields(lines(in: stream)) }
    /// `key=value` words of every line of standard output (a later line wins).
    public var values: [String: String] { values(in: .stdout) }
    /// The value of `key` on standard output.
    public func value(_ key: String) -> String? { values[key] }
    /// The value of `key` on standard output, as a number.
    public func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }
}
