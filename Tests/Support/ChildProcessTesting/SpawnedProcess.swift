import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests: spawned with an empty signal mask and default dispositions whatever the spawning
/// thread has, its standard input `/dev/null`, its standard output (and optionally standard error) read line by
/// line through pipes. Every read has a deadline; ``finish(within:)`` kills a child that outlives its timeout,
/// and `deinit` kills and reaps a child the test did not finish.
///
/// Test targets subclass it to add their own defaults (which helper, which timeouts); the mechanics live here.
open class SpawnedProcess {
    /// Where the child's standard error goes.
    public enum StandardError: Sendable {
        /// The test process's own standard error.
        case inherited
        /// The same pipe as standard output: its lines mix into ``lines``.
        case mergedWithOutput
        /// A pipe of its own: its lines go to ``errorLines``.
        case separate
    }

    /// One of the child's output streams.
    public enum Stream: Sendable { case stdout, stderr }

    /// The child's process id; ours to signal until it is reaped.
    public let pid: pid_t
    /// Read ends: [stdout, stderr]; -1 once a stream ended (or when stderr is not captured separately).
    private var fds: [CInt]
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

    /// Starts `executable` (a path) with `arguments`, holding the signal-queue lock (see ``SignalQueueAccess``)
    /// until the child is reaped.
    public init(executable: String, arguments: [String], standardError: StandardError = .inherited,
                signalQueue: SignalQueueAccess = .shared) throws {
        queueLock = try SignalQueueLock(signalQueue)
        // Close-on-exec pipes: a child that a parallel test spawns later must not inherit our ends (it would
        // hold our end-of-output until it exits). dup2 in the child clears the flag on fd 1 and 2. (Glibc's Swift
        // module has no pipe2; the window between pipe and fcntl is a few instructions.)
        func closeOnExecPipe(_ fds: inout [CInt]) -> Bool {
            guard pipe(&fds) == 0 else { return false }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return true
        }
        var out: [CInt] = [-1, -1]
        var err: [CInt] = [-1, -1]
        guard closeOnExecPipe(&out) else { throw ChildProcessError.system(call: "pipe", errno: errno) }
        if standardError == .separate, !closeOnExecPipe(&err) {
            let code = errno
            close(out[0])
            close(out[1])
            throw ChildProcessError.system(call: "pipe", errno: code)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        switch standardError {
        case .inherited: break
        case .mergedWithOutput: posix_spawn_file_actions_adddup2(&actions, out[1], 2)
        case .separate: posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        }
        for fd in out + err where fd >= 0 { posix_spawn_file_actions_addclose(&actions, fd) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The child starts with an empty mask and default dispositions, whatever this test process has.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        try ChildProcessSignals.configureSpawnAttributes(&attributes)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let spawnError = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(out[1])
        if err[1] >= 0 { close(err[1]) }
        guard spawnError == 0 else {
            close(out[0])
            if err[0] >= 0 { close(err[0]) }
            throw ChildProcessError.system(call: "posix_spawn \(executable)", errno: spawnError)
        }
        pid = child
        fds = [out[0], err[0]]
    }

    deinit {
        if reapedExit == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
        }
        for fd in fds where fd >= 0 { close(fd) }
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

    /// Reads all output and reaps the process; kills it and throws ``ChildProcessError/timedOut(output:errorOutput:)``
    /// after `timeout`.
    public func finish(within timeout: Duration) throws -> ProcessExit {
        let deadline = ContinuousClock.now + timeout
        while try readMore(until: deadline) {}
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            throw ChildProcessError.timedOut(output: lines, errorOutput: errorLines)
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let ended = ProcessExit(waitStatus: status)
        reapedExit = ended
        queueLock = nil
        return ended
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

    /// Sends `signal` with kill(2).
    public func send(_ signal: CInt) throws {
        if kill(pid, signal) != 0 { throw ChildProcessError.system(call: "kill", errno: errno) }
    }

    /// Lines of standard output starting with `prefix`.
    public func lines(startingWith prefix: String) -> [String] { lines.filter { $0.hasPrefix(prefix) } }

    /// The helper's own failed checks: output lines starting with `FAIL`.
    public var failures: [String] { lines(startingWith: "FAIL") }
    /// The helper's own passed checks: output lines starting with `PASS`.
    public var passes: [String] { lines(startingWith: "PASS") }
    /// Standard output as one text, for failure messages.
    public var transcript: String { lines.joined(separator: "\n") }

    /// `key=value` words of every line of `stream` (a later line wins).
    public func values(in stream: Stream) -> [String: String] { mergedFields(lines(in: stream)) }
}
