import CBench

#if canImport(Glibc)
import Glibc
#endif

/// One receiver under test: how to start it and what it can take part in.
struct ReceiverKind: Sendable {
    enum Family: Sendable {
        /// Plain C: the floor and the handler.
        case c
        /// SignalCore's own paths.
        case signalCore
        /// Another library or language.
        case peer
    }

    /// Short name used in tables and on the command line.
    var name: String
    /// What it is, for the table's legend.
    var summary: String
    var command: [String]
    var family: Family
    /// Can it receive SIGRTMIN+1 (the real-time flood)?
    var realtime: Bool = true
    /// Does it see every real-time delivery with its value (not just counts)?
    var seesValues: Bool = true
    /// One of the async peers the default `for await` path must beat (DispatchSource, swift-service-lifecycle,
    /// Go, tokio).
    var isAsyncPeer: Bool = false
    /// Why it cannot run here (its toolchain is missing or its build failed), or nil.
    var unavailable: String?

    static let floor = "c-sigwaitinfo"

    /// Every receiver. `peersDir` holds the Go and Rust peers that scripts/bench built; a peer that is not
    /// there is listed with the reason scripts/bench left in `NAME.skipped`.
    static func all(binDir: String, peersDir: String, python: String, pythonReceiver: String) -> [ReceiverKind] {
        let swift = binDir + "/BenchReceiver"
        let swiftAsync = binDir + "/BenchAsyncReceiver"
        let c = binDir + "/BenchCReceiver"
        func peer(_ name: String, _ binary: String, _ summary: String, realtime: Bool = true, async: Bool) -> ReceiverKind {
            let path = peersDir + "/" + binary
            var kind = ReceiverKind(name: name, summary: summary, command: [path], family: .peer, realtime: realtime,
                                    seesValues: false, isAsyncPeer: async)
            if access(path, X_OK) != 0 {
                kind.unavailable = readFirstLine(path + ".skipped") ?? "skipped: \(path) was not built (scripts/bench builds it)"
            }
            return kind
        }
        var kinds = [
            ReceiverKind(name: "c-sigwaitinfo", summary: "raw C: a thread in sigwaitinfo (the floor)", command: [c, "sigwaitinfo"], family: .c),
            ReceiverKind(name: "c-sigaction", summary: "raw C: an SA_SIGINFO handler, main thread in pause()", command: [c, "sigaction"], family: .c),
        ]
        let signalCore: [(name: String, sync: String, values: Bool)] = [
            ("sc-await", "for await over engine.events(for:) in a detached task, main thread asleep", true),
            ("sc-await-exec", "sc-await under withTaskExecutorPreference(engine.executor)", true),
            ("sc-blocking", "subscription.next(timeout:) in a loop on the main thread", true),
            ("sc-poll", "the main thread spinning on poller.hasNew (counts only)", false),
        ]
        for path in signalCore {
            kinds.append(ReceiverKind(name: path.name, summary: "SignalCore: \(path.sync)", command: [swift, path.name],
                                      family: .signalCore, seesValues: path.values))
        }
        for path in signalCore {
            let shape = path.name == "sc-blocking" || path.name == "sc-poll"
                ? "on a thread of its own" : "in a child task of a task group"
            kinds.append(ReceiverKind(name: path.name + "@main", summary: "SignalCore: \(path.name)'s loop \(shape) in an async @main program "
                                        + "(main thread in libdispatch's sigsuspend)",
                                      command: [swiftAsync, path.name], family: .signalCore, seesValues: path.values))
        }
        kinds += [
            ReceiverKind(name: "dispatch", summary: "DispatchSource.makeSignalSource on a serial queue (counts only)", command: [swift, "dispatch"],
                         family: .peer, seesValues: false, isAsyncPeer: true),
            ReceiverKind(name: "lifecycle", summary: "swift-service-lifecycle 2.13.0 UnixSignalsSequence (no RT signals)", command: [swift, "lifecycle"],
                         family: .peer, realtime: false, seesValues: false, isAsyncPeer: true),
            peer("go", "bench-go", "Go os/signal: signal.Notify on a channel of 1, main goroutine ranges over it", async: true),
            peer("tokio", "bench-tokio", "Rust tokio::signal::unix on #[tokio::main] (multi-thread), select! over recv()", async: true),
            peer("signal-hook", "bench-signal-hook", "Rust signal-hook iterator: for signal in Signals::forever()", async: false),
            peer("signal-hook-flag", "bench-signal-hook-flag", "Rust signal-hook flag::register, main thread spinning on the flags", async: false),
            ReceiverKind(name: "python", summary: "Python \(pythonVersion(python)) signal.signal handler, main thread in time.sleep",
                         command: [python, pythonReceiver], family: .peer, seesValues: false),
        ]
        return kinds
    }

    static func readFirstLine(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, CInt(buffer.count), f) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return line.isEmpty ? nil : line
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
        var environment = environment
        environment["CBENCH_RT_SIGNAL"] = "\(cbench_rt_signal())"
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
