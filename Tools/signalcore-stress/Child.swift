#if canImport(Glibc)
import Glibc
#endif

/// A child process of the stress run (target or sender): stdin and stdout are pipes to us, stderr is shared.
/// It starts with an empty signal mask and default dispositions, whatever this process has.
final class Child {
    let pid: pid_t
    let name: String
    private let input: CInt
    private let output: CInt
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []
    private(set) var status: Status?

    enum Status: Equatable, CustomStringConvertible {
        case exited(CInt)
        case signalled(CInt)
        var description: String {
            switch self {
            case .exited(let c): return "exit \(c)"
            case .signalled(let s): return "killed by signal \(s)"
            }
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(name: String, _ argv: [String]) throws {
        self.name = name
        var toChild: [CInt] = [-1, -1]
        var fromChild: [CInt] = [-1, -1]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        for fd in toChild + fromChild { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cargv = argv.map { strdup($0) } + [nil]
        defer { cargv.forEach { free($0) } }
        var child: pid_t = 0
        let err = posix_spawn(&child, argv[0], &actions, &attributes, cargv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard err == 0 else {
            close(toChild[1])
            close(fromChild[0])
            throw Failure(description: "posix_spawn \(argv[0]): errno \(err)")
        }
        pid = child
        input = toChild[1]
        output = fromChild[0]
    }

    deinit {
        if status == nil { kill() }
        close(input)
        close(output)
    }

    /// Writes one line to the child's stdin.
    func send(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { write(input, $0, strlen($0)) }
    }

    /// The next output line starting with `prefix` (earlier lines are kept in `lines`), or nil when the child
    /// closed its output or `deadline` (CLOCK_MONOTONIC ns) passed.
    func line(startingWith prefix: String, deadline: Int64, scanned: inout Int) -> String? {
        while true {
            while scanned < lines.count {
                let line = lines[scanned]
                scanned += 1
                if line.hasPrefix(prefix) { return line }
            }
            guard readMore(deadline: deadline) else { return nil }
        }
    }

    private func readMore(deadline: Int64) -> Bool {
        while true {
            let left = deadline - monotonicNow()
            if left <= 0 { return false }
            var p = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let r = Glibc.poll(&p, 1, CInt(min(left / 1_000_000 + 1, 1000)))
            if r < 0 && errno != EINTR { return false }
            if r <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = read(output, &buffer, buffer.count)
            if n <= 0 { return false }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 10) {
                lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
            return true
        }
    }

    /// The exit status if the child has ended (reaps it), without waiting.
    func poll() -> Status? {
        if status == nil {
            var raw: CInt = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                status = (raw & 0x7f) == 0 ? .exited((raw >> 8) & 0xff) : .signalled(raw & 0x7f)
            }
        }
        return status
    }

    /// Waits for the exit until `deadline`; kills the child if it is still running then.
    @discardableResult
    func wait(deadline: Int64) -> Status {
        while status == nil {
            var raw: CInt = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                status = (raw & 0x7f) == 0 ? .exited((raw >> 8) & 0xff) : .signalled(raw & 0x7f)
                break
            }
            if monotonicNow() > deadline {
                kill()
                break
            }
            usleep(2000)
        }
        return status!
    }

    func kill() {
        guard poll() == nil else { return }  // already ended: keep its real status
        _ = Glibc.kill(pid, SIGKILL)
        var raw: CInt = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = .signalled(SIGKILL)
    }
}

func monotonicNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Writes a line to standard error without stdio (Swift 6 will not touch C's `stderr` global).
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// Reads one line from stdin, waiting at most until `deadline`. Nil on EOF or timeout.
func readStdinLine(deadline: Int64) -> String? {
    var bytes: [UInt8] = []
    while true {
        let left = deadline - monotonicNow()
        if left <= 0 { return nil }
        var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, CInt(min(left / 1_000_000 + 1, 1000)))
        if r <= 0 { continue }
        var byte: UInt8 = 0
        if read(0, &byte, 1) != 1 { return nil }
        if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
}

/// `key=value` words of a line.
func fields(_ line: String) -> [String: String] {
    var result: [String: String] = [:]
    for word in line.split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
    }
    return result
}
