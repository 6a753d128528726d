import ChildProcessTesting
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// signal-run with a scenario of `Fixtures/scenario` as COMMAND, standard output and standard error read
/// separately. In a new PID namespace (`unshare --pid --fork --mount-proc`), signal-run is that namespace's PID 1;
/// then ``pid`` is unshare's, and ``supervisorPID(timeout:)`` finds signal-run's pid as this machine sees it.
final class SignalRunProcess {
    static var signalRun: String { SpawnedProcess.builtProduct("signal-run") }
    static var helper: String { SpawnedProcess.builtProduct("ChildSupervisorTestHelper") }

    /// Tests/SignalRunTests/Fixtures/scenario, next to this file.
    static let fixture: String = {
        let file = #filePath
        return String(file[...file.lastIndex(of: "/")!]) + "Fixtures/scenario"
    }()

    /// The process started: unshare in a namespace, else signal-run or the helper itself.
    let process: SpawnedProcess
    let inNamespace: Bool

    /// Starts `signal-run OPTIONS -- scenario SCENARIO...`, as PID 1 of a new PID namespace unless `inNamespace`
    /// is false.
    init(_ options: [String] = ["--verbose"], scenario: [String], inNamespace: Bool = true) throws {
        self.inNamespace = inNamespace
        let command = [SignalRunProcess.signalRun] + options + ["--", SignalRunProcess.fixture] + scenario
        if inNamespace {
            process = try SpawnedProcess(PIDNamespace.unshare, PIDNamespace.arguments + command, standardError: .separate)
        } else {
            process = try SpawnedProcess(command[0], Array(command.dropFirst()), standardError: .separate)
        }
    }

    /// Starts the library's test helper with `arguments`.
    init(helper arguments: [String]) throws {
        inNamespace = false
        process = try SpawnedProcess(SignalRunProcess.helper, arguments, standardError: .separate)
    }

    /// The started process's id (unshare's in a namespace).
    var pid: pid_t { process.pid }
    /// Lines of standard output read so far.
    var lines: [String] { process.lines }
    /// Lines of standard error read so far.
    var errorLines: [String] { process.errorLines }
    /// `key=value` words of every line of `stream`.
    func values(in stream: SpawnedProcess.Stream) -> [String: String] { process.values(in: stream) }

    /// Reads all output and reaps the process; kills it and throws after `timeout`.
    func finish(within timeout: Duration) throws -> ProcessExit { try process.finish(timeout: timeout) }

    /// signal-run's process id in this test's PID namespace: unshare's child, or ``pid`` itself.
    func supervisorPID(timeout: Duration = .seconds(30)) throws -> pid_t {
        guard inNamespace else { return pid }
        let deadline = ContinuousClock.now + timeout
        while true {
            let children = ProcStat.all().filter { $0.ppid == pid }
            if let child = children.first, children.count == 1, child.command == "signal-run" { return child.pid }
            guard ContinuousClock.now < deadline else {
                throw ChildProcessError.missingLine("signal-run as the child of unshare \(pid)", output: lines,
                                                   errorOutput: errorLines)
            }
            sched_yield()
        }
    }

    /// Reads standard output until `line` arrives.
    func awaitStdout(_ line: String, timeout: Duration = .seconds(60)) throws {
        try process.awaitLine(in: .stdout, timeout: timeout, what: line) { $0 == line }
    }

    /// Reads standard error until a line starting with `prefix` arrives; returns it.
    @discardableResult
    func awaitStderr(startingWith prefix: String, timeout: Duration = .seconds(60)) throws -> String {
        try process.awaitLine(in: .stderr, timeout: timeout, what: prefix) { $0.hasPrefix(prefix) }.line
    }

    /// COMMAND's pid, from signal-run's `--verbose` line "started pid P in process group P: ...".
    func commandPID(timeout: Duration = .seconds(60)) throws -> Int {
        let line = try awaitStderr(startingWith: "signal-run: started pid ", timeout: timeout)
        let words = line.split(separator: " ")
        guard words.count > 3, let pid = Int(words[3]) else {
            throw ChildProcessError.missingLine("a pid in \(line)", output: lines, errorOutput: errorLines)
        }
        return pid
    }

    /// Sends `signal` to signal-run (in the namespace: from outside it, to its pid as this machine sees it).
    func signalSupervisor(_ signal: CInt) throws {
        let target = try supervisorPID()
        if kill(target, signal) != 0 { throw ChildProcessError.system(call: "kill", errno: errno) }
    }
}

/// One line of /proc/PID/stat: the fields the tests need.
struct ProcStat {
    var pid: pid_t
    var command: String
    var state: Character
    var ppid: pid_t

    init?(pid: pid_t) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let ppid = pid_t(fields[1]) else { return nil }
        self.pid = pid
        command = String(text[text.index(after: open)..<close])
        self.state = state
        self.ppid = ppid
    }

    /// Every process this machine's /proc shows now.
    static func all() -> [ProcStat] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.compactMap { ProcStat(pid: $0) }
    }

    /// Voluntary plus involuntary context switches of every thread of `pid`, by thread id.
    static func contextSwitches(of pid: pid_t) -> [pid_t: Int] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var result: [pid_t: Int] = [:]
        for task in tasks {
            guard let tid = pid_t(task),
                  let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)
            else { continue }
            result[tid] = status.split(separator: "\n")
                .filter { $0.contains("ctxt_switches:") }  // voluntary_ and nonvoluntary_
                .compactMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
                .reduce(0, +)
        }
        return result
    }
}
