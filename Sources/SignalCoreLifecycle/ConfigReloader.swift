import SignalCore
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reloads a JSON configuration file on SIGHUP: reads, decodes, validates, then swaps it in atomically.
///
/// ```swift
/// let reloader = try ConfigReloader<MyConfig>(path: "/etc/app.json", validate: { try $0.check() })
/// try reloader.start()                        // SIGHUP from now on
/// let config = reloader.current               // readers always see one whole configuration
/// ```
///
/// - A file that is missing, unreadable, not JSON, or refused by the validator leaves the current
///   configuration in force; the outcome (``Outcome/rejected(_:)``) says why.
/// - Reloads run on the reloader's own thread ("reload"), never in handler context and never on libdispatch's
///   threads; the thread sleeps, with no timeout, until a reload is due.
/// - Coalescing: while a reload runs, any number of further SIGHUPs (or ``requestReload()`` calls) cause
///   exactly one more reload, which starts after the running one ends and reads the file as it is then.
/// - The signals are taken by a small task on the engine's wait thread (``SignalEngine/executor``), which only
///   counts the request and hands it to the reload thread, so a request is counted even while a reload runs.
///   Its subscription keeps only the newest undelivered signal (``SignalBuffering/bufferingNewest(_:)`` of 1):
///   one waiting request already stands for any number, since the reload reads the file as it is when it
///   runs.
public final class ConfigReloader<Config: Decodable & Sendable>: Sendable {
    /// The result of one reload.
    public enum Outcome: Sendable, CustomStringConvertible {
        /// The new configuration is in force, as generation `generation`.
        case applied(generation: UInt64)
        /// The previous configuration stays in force.
        case rejected(ConfigError)

        public var description: String {
            switch self {
            case .applied(let generation): return "applied generation \(generation)"
            case .rejected(let error): return "kept the previous configuration: \(error)"
            }
        }
    }

    /// Counters of the reload machinery.
    public struct Statistics: Sendable, Hashable {
        /// Reload requests (signals, ``requestReload()`` calls).
        public var requests: UInt64 = 0
        /// Reloads performed (applied or rejected).
        public var reloads: UInt64 = 0
        public var applied: UInt64 = 0
        public var rejected: UInt64 = 0
        /// Requests folded into a reload that was already due.
        public var coalesced: UInt64 = 0
    }

    private struct Current: Sendable {
        var config: Config
        var generation: UInt64
    }

    private struct Control {
        var running = false
        var pending = false
        var statistics = Statistics()
        var lastOutcome: Outcome? = nil
        var listening: Task<Void, Never>? = nil
        /// Runs the reloads; made by ``start(signal:)`` or the first ``requestReload()``.
        var thread: LifecycleThread? = nil
    }

    public let path: String
    private let validator: @Sendable (Config) throws -> Void
    private let observer: @Sendable (Outcome) -> Void
    private let current: Mutex<Current>
    private let control = Mutex(Control())
    private let idle = Gate()

    /// Loads the file once, now: the initial configuration is generation 1.
    /// Throws when the file cannot be used; see ``init(path:initial:validate:observer:)`` to start from a value.
    public convenience init(
        path: String, validate: @escaping @Sendable (Config) throws -> Void = { _ in },
        observer: @escaping @Sendable (Outcome) -> Void = { _ in }
    ) throws(ConfigError) {
        let config = try ConfigReloader.load(path: path, validate: validate)
        self.init(path: path, initial: config, validate: validate, observer: observer)
    }

    /// Starts from `initial` (generation 1) without reading the file.
    /// - Parameters:
    ///   - validate: throws to refuse a configuration; a ``ConfigRejection`` carries the reason.
    ///   - observer: told about every reload's outcome, on the reloading task.
    public init(
        path: String, initial: Config, validate: @escaping @Sendable (Config) throws -> Void = { _ in },
        observer: @escaping @Sendable (Outcome) -> Void = { _ in }
    ) {
        self.path = path
        self.validator = validate
        self.observer = observer
        self.current = Mutex(Current(config: initial, generation: 1))
    }

    // MARK: Reading

    /// The configuration in force.
    public var config: Config { current.withLock { $0.config } }

    /// 1 for the initial configuration, +1 for each applied reload.
    public var generation: UInt64 { current.withLock { $0.generation } }

    /// The configuration and its generation, read together.
    public var snapshot: (config: Config, generation: UInt64) {
        current.withLock { ($0.config, $0.generation) }
    }

    public var statistics: Statistics { control.withLock { $0.statistics } }

    /// The outcome of the most recent reload, if any.
    public var lastOutcome: Outcome? { control.withLock { $0.lastOutcome } }

    // MARK: Reloading

    /// Reloads on every delivery of `signal` from now on: subscribes to it, which makes the engine watch it
    /// (starting it when needed), and starts the reload thread.
    ///
    /// Calling it again replaces the previous subscription. After ``stop()`` the signal stays caught by the
    /// engine (counted, answered by nobody) until the program unwatches it.
    public func start(signal: Signal = .sighup) throws(SignalError) {
        try makeThread()
        let events = try SignalEngine.shared.events(for: [signal], buffering: .bufferingNewest(1))
        let task = Task(executorPreference: SignalEngine.shared.executor) { [weak self] in
            for await _ in events {
                guard let self else { return }
                self.requestReload()
            }
        }
        let old = control.withLock { c -> Task<Void, Never>? in
            let old = c.listening
            c.listening = task
            return old
        }
        old?.cancel()
    }

    /// Stops reloading on signals (a reload under way finishes). The engine keeps watching the signal.
    public func stop() {
        let task = control.withLock { c -> Task<Void, Never>? in
            let task = c.listening
            c.listening = nil
            return task
        }
        task?.cancel()
    }

    deinit {
        let (task, thread) = control.withLock { ($0.listening, $0.thread) }
        task?.cancel()
        thread?.end()
    }

    /// Asks for a reload, coalescing with one already due: if a reload is running, one more follows it, however
    /// many requests arrive meanwhile. Returns at once; the reload runs on the reload thread.
    public func requestReload() {
        let (startNow, thread) = control.withLock { c -> (Bool, LifecycleThread?) in
            c.statistics.requests += 1
            if c.running {
                if c.pending { c.statistics.coalesced += 1 }
                c.pending = true
                return (false, nil)
            }
            c.running = true
            return (true, c.thread)
        }
        guard startNow else { return }
        if let thread = thread ?? (try? makeThread()), thread.execute({ self.runReloads() }) { return }
        // pthread_create failed (a request from code before start()): reload on the global executor instead.
        Task.detached { self.runReloads() }
    }

    /// The reload thread, made now unless it exists.
    @discardableResult
    private func makeThread() throws(SignalError) -> LifecycleThread {
        if let existing = control.withLock({ $0.thread }) { return existing }
        let made = try LifecycleThread(name: "reload")
        let (kept, surplus) = control.withLock { c -> (LifecycleThread, LifecycleThread?) in
            if let existing = c.thread { return (existing, made) }
            c.thread = made
            return (made, nil)
        }
        surplus?.end()
        return kept
    }

    /// Waits until no reload is running or due, up to `timeout`. Returns whether the reloader is idle.
    public func waitUntilIdle(timeout: Duration) -> Bool {
        idle.wait(timeout: timeout) { !control.withLock { $0.running } }
    }

    private func runReloads() {
        while true {
            _ = reloadNow()
            let more = control.withLock { c -> Bool in
                if c.pending {
                    c.pending = false
                    return true
                }
                c.running = false
                return false
            }
            if !more { break }
        }
        idle.broadcast()
    }

    /// Reloads now, on the calling thread, without coalescing. Returns (and reports) the outcome.
    @discardableResult
    public func reloadNow() -> Outcome {
        let outcome: Outcome
        do {
            let config = try ConfigReloader.load(path: path, validate: validator)
            let generation = current.withLock { c -> UInt64 in
                c.generation += 1
                c.config = config
                return c.generation
            }
            outcome = .applied(generation: generation)
        } catch {
            outcome = .rejected(error)
        }
        control.withLock { c in
            c.statistics.reloads += 1
            if case .applied = outcome { c.statistics.applied += 1 } else { c.statistics.rejected += 1 }
            c.lastOutcome = outcome
        }
        observer(outcome)
        return outcome
    }

    // MARK: Loading

    /// Reads, decodes and validates the file at `path`.
    public static func load(path: String, validate: (Config) throws -> Void = { _ in }) throws(ConfigError) -> Config {
        let bytes = try readFile(path)
        let config: Config
        do {
            config = try JSONDecoder().decode(Config.self, from: Data(bytes))
        } catch {
            throw .malformed(path: path, reason: describe(error))
        }
        do {
            try validate(config)
        } catch {
            throw .invalid(path: path, reason: "\(error)")
        }
        return config
    }

    /// The whole file, read with open/read so that a failure names the call and errno.
    static func readFile(_ path: String) throws(ConfigError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .unreadable(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, call: "read", errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 16 << 20 { throw .malformed(path: path, reason: "larger than 16 MiB") }
        }
        return bytes
    }

    /// A one-line reason for a decoding error (missing key, wrong type, syntax).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "top level" : path.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key \"\(key.stringValue)\" at \(at(context.codingPath))"
        case .typeMismatch(let type, let context):
            return "wrong type at \(at(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "null at \(at(context.codingPath)): expected \(type)"
        case .dataCorrupted(let context):
            let underlying = context.underlyingError.map { ": \($0)" } ?? ""
            return "invalid JSON at \(at(context.codingPath)): \(context.debugDescription)\(underlying)"
        @unknown default:
            return "\(error)"
        }
    }
}
