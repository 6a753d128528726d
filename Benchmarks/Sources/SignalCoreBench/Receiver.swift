import CBench

#if canImport(Glibc)
import Glibc
#endif

/// One receiver under test: how to start it and what it can take part in.
struct ReceiverKind: Sendable {
    /// Short name used in tables and on the command line.
    var name: String
    /// What it is, for the table's legend.
    var summary: String
    var command: [String]
    /// Can it receive SIGRTMIN (the real-time flood)?
    var realtime: Bool = true
    /// Does it see every real-time delivery with its value (not just counts)?
    var seesValues: Bool = true
    var isPeer: Bool = false

    static func all(binDir: String, python: String, pythonReceiver: String) -> [ReceiverKind] {
        let swift = binDir + "/BenchReceiver"
        let c = binDir + "/BenchCReceiver"
        return [
            ReceiverKind(name: "c-sigwaitinfo", summary: "raw C: a thread in sigwaitinfo (the floor)", command: [c, "sigwaitinfo"]),
            ReceiverKind(name: "c-sigaction", summary: "raw C: an SA_SIGINFO handler, main thread in pause()", command: [c, "sigaction"]),
            ReceiverKind(name: "sc-await", summary: "SignalCore: for await over engine.events(for:) in a detached task", command: [swift, "sc-await"]),
            ReceiverKind(name: "sc-await-exec", summary: "SignalCore: the same under withTaskExecutorPreference(engine.executor)", command: [swift, "sc-await-executor"]),
            ReceiverKind(name: "sc-blocking", summary: "SignalCore: subscription.next(timeout:) on the main thread", command: [swift, "sc-blocking"]),
            ReceiverKind(name: "sc-poll", summary: "SignalCore: main thread spinning on poller.hasNew (counts only)", command: [swift, "sc-poll"], seesValues: false),
            ReceiverKind(name: "dispatch", summary: "DispatchSource.makeSignalSource on a serial queue (counts only)", command: [swift, "dispatch"], seesValues: false, isPeer: true),
            ReceiverKind(name: "lifecycle", summary: "swift-service-lifecycle 2.13.0 UnixSignalsSequence (no RT signals)", command: [swift, "lifecycle"], realtime: false, seesValues: false, isPeer: true),
            ReceiverKind(name: "python", summary: "Python \(pythonVersion(python)) signal.signal handler, main thread in time.sleep", command: [python, pythonReceiver], seesValues: false, isPeer: true),
        ]
    }

    static func pythonVersion(_ python: String) -> String {
        guard let output = try? ChildProcess.capture([python, "-c", "import platform; print(platform.python_version())"]) else { return "3" }
        return output.split(separator: "\n").first.map(String.init) ?? "3"
    }
}

/// A running receiver with its own shared page.
final class RunningReceiver {
    let kind: ReceiverKind
    let process: ChildProcess
    let shm: UnsafeMutablePointer<cbench_shm>
    let path: String

    enum StartError: Error, CustomStringConvertible {
        case map(String, CInt)
        case notReady(String, exit: String)
        case skipped(String)
        var description: String {
            switch self {
            case .map(let path, let e): return "cannot map \(path): errno \(e)"
            case .notReady(let name, let exit): return "\(name) did not become ready (\(exit))"
            case .skipped(let name): return "\(name) is not available in this build"
            }
        }
    }

    init(_ kind: ReceiverKind, extraArguments: [String] = [], environment: [String: String] = [:], tag: String) throws {
        self.kind = kind
        path = "/dev/shm/signalcore-bench-\(getpid())-\(tag)"
        guard let page = cbench_map(path, 1) else { throw StartError.map(path, errno) }
        shm = page
        process = try ChildProcess(kind.command + [path] + extraArguments, environment: environment)
        let deadline = cbench_now_ns() + 20_000_000_000
        while cbench_load(&shm.pointee.ready) == 0 {
            if let status = process.poll() {
                unlink(path)
                if status == .exited(3) { throw StartError.skipped(kind.name) }
                throw StartError.notReady(kind.name, exit: "\(status)")
            }
            if cbench_now_ns() > deadline {
                process.kill()
                unlink(path)
                throw StartError.notReady(kind.name, exit: "timeout")
            }
            cbench_sleep_ns(1_000_000)
        }
    }

    func received(_ slot: Int) -> UInt64 { cbench_received(shm, CInt(slot)) }
    var cpuNanoseconds: Int64 { cbench_process_cpu_ns(process.pid) }

    /// Waits (bounded) for the receiver's published results.
    func results(count: Int, timeout: Double) -> [Double]? {
        let deadline = cbench_now_ns() + Int64(timeout * 1e9)
        while cbench_load(&shm.pointee.result_ready) == 0 {
            if process.poll() != nil || cbench_now_ns() > deadline { return nil }
            cbench_sleep_ns(2_000_000)
        }
        return withUnsafeBytes(of: shm.pointee.result) { Array($0.bindMemory(to: Double.self).prefix(count)) }
    }

    func stop() {
        process.kill()
        munmap(shm, Int(CBENCH_SHM_SIZE))
        unlink(path)
    }
}
