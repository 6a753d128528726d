#if canImport(Glibc)
import Glibc
#endif

/// A child process started with an empty signal mask and default dispositions, whatever the driver has.
final class ChildProcess {
    enum Status: Equatable, CustomStringConvertible {
        case exited(CInt)
        case signalled(CInt)
        var description: String {
            switch self {
            case .exited(let code): return "exit \(code)"
            case .signalled(let signal): return "signal \(signal)"
            }
        }
    }

    struct SpawnError: Error, CustomStringConvertible {
        var command: String
        var errno: CInt
        var description: String { "posix_spawn \(command): \(String(cString: strerror(errno)))" }
    }

    let pid: pid_t
    private var status: Status?
    private let outputFD: CInt?

    init(_ argv: [String], environment: [String: String] = [:], captureOutput: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var fds: [CInt] = [-1, -1]
        if captureOutput {
            guard pipe(&fds) == 0 else { throw SpawnError(command: argv[0], errno: errno) }
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_addclose(&actions, fds[0])
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
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
        var env: [String: String] = [:]
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            e += 1
        }
        for (k, v) in environment { env[k] = v }
        let cargv = argv.map { strdup($0) } + [nil]
        let cenv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cargv.forEach { free($0) }
            cenv.forEach { free($0) }
        }
        var child: pid_t = 0
        let err = posix_spawnp(&child, argv[0], &actions, &attributes, cargv, cenv)
        if captureOutput { close(fds[1]) }
        guard err == 0 else {
            if captureOutput { close(fds[0]) }
            throw SpawnError(command: argv[0], errno: err)
        }
        pid = child
        outputFD = captureOutput ? fds[0] : nil
    }

    deinit {
        if status == nil { kill() }
        if let outputFD { close(outputFD) }
    }

    /// The exit status if the process has ended (reaps it), else nil.
    func poll() -> Status? {
        if let status { return status }
        var raw: CInt = 0
        let r = waitpid(pid, &raw, WNOHANG)
        guard r == pid else { return nil }
        status = Self.decode(raw)
        return status
    }

    /// SIGKILL and reap.
    func kill() {
        guard status == nil else { return }
        _ = Glibc.kill(pid, SIGKILL)
        var raw: CInt = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = Self.decode(raw)
    }

    /// Reads all output (when captured) and waits for the exit, killing the process after `timeout` seconds.
    func finish(timeout: Double) -> (Status, String) {
        var output: [UInt8] = []
        let deadline = Double(timeNow()) + timeout
        if let fd = outputFD {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while Double(timeNow()) < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if Glibc.poll(&p, 1, 200) <= 0 { continue }
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                output += buffer[0..<n]
            }
        }
        while poll() == nil {
            if Double(timeNow()) > deadline {
                kill()
                break
            }
            usleep(2000)
        }
        return (status!, String(decoding: output, as: UTF8.self))
    }

    private func timeNow() -> Int { Int(time(nil)) }

    static func decode(_ raw: CInt) -> Status {
        (raw & 0x7f) == 0 ? .exited((raw >> 8) & 0xff) : .signalled(raw & 0x7f)
    }

    /// Runs a command to completion and returns its standard output.
    static func capture(_ argv: [String], timeout: Double = 20) throws -> String {
        let child = try ChildProcess(argv, captureOutput: true)
        return child.finish(timeout: timeout).1
    }
}
