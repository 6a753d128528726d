import CSignalShim
import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Spawns child processes, reaps them when they end, and forwards chosen signals to them.
///
/// ```swift
/// let supervisor = ChildSupervisor(configuration: .init(forwardedSignals: [.sigterm, .sigint, .sighup]))
/// try supervisor.start()                                 // SIGCHLD and the forwarded signals
/// let child = try supervisor.spawn("nginx", arguments: ["-g", "daemon off;"])
/// if let exit = await child.waitForExit() { print(exit) } // "pid 812 exited with status 0"
/// ```
///
/// - **Reaping.** Each SIGCHLD delivery runs one pass that reaps every child that has ended by then: standard
///   signals merge in the kernel, so one delivery can stand for many exits. Under
///   ``Configuration/Reaping-swift.enum/spawnedChildren`` (the default) a pass calls `waitpid(pid, WNOHANG)` for
///   each child this supervisor spawned and leaves every other child to the code that waits for it. Under
///   ``Configuration/Reaping-swift.enum/allChildren`` it loops on `waitpid(-1, WNOHANG)`: every child of the
///   process, including orphans that the kernel reparents to a PID 1 or to a subreaper (``setChildSubreaper(_:)``).
/// - **Spawning.** ``spawn(_:arguments:environment:searchPath:foregroundTerminal:)`` starts each child with
///   `posix_spawn` in a process group of its own, with an empty signal mask and the default action for every
///   signal, whatever this process's threads block or ignore.
/// - **Threads.** The supervisor's tasks run on a thread of its own ("supervisor"), which sleeps until a signal
///   event or the grace timer needs it. Wait for a child with ``SupervisedChild/waitForExit()`` from a task, or
///   with ``SupervisedChild/waitForExit(timeout:)`` from a thread.
/// - **Forwarding.** Each delivery of a ``Configuration/forwardedSignals`` signal is sent on to every running
///   spawned child, or to its process group. With ``Configuration/killGrace``, the first forwarded SIGTERM
///   starts a one-shot timer; when it runs out, every spawned child still running gets SIGKILL in its whole
///   process group.
///
/// The supervisor subscribes to the signal engine (starting it, or adding SIGCHLD and the forwarded signals to
/// what it watches); it never stops the engine. It waits for signal events and never polls: an idle supervisor
/// causes no wake-ups (its tasks do not run on libdispatch, whose Linux thread pool keeps a once-a-second timer).
///
/// Hard truths:
/// - With ``Configuration/Reaping-swift.enum/allChildren``, nothing else in the process may wait for a child:
///   the supervisor may reap it first, and the other `waitpid` then fails with ECHILD. That includes
///   Foundation's `Process`. Use it in a process whose children are all the supervisor's, such as an init.
/// - A reaped child's pid may be given to a new process at once. The supervisor signals only children it has not
///   reaped yet, and reaps and signals under one lock, so it never signals a stranger.
/// - The supervisor waits for the engine's events. If other code stops the engine, its subscriptions end and it
///   reaps and forwards nothing more until it is stopped and started again.
/// - A forwarded signal goes to the children running when it is handled: one that arrives before the first
///   spawn reaches nobody.
/// - Forwarded deliveries wait in a buffer of 256 for the forwarding task; past that the engine leaves the
///   forwarded signals in the kernel until the task catches up (real-time ones queue there, standard ones
///   coalesce as the kernel always does), so none is dropped. SIGCHLD keeps only its newest delivery: one
///   pending delivery already stands for every exit before it.
public final class ChildSupervisor: Sendable {
    /// What the supervisor reaps, which signals it forwards, and where.
    public struct Configuration: Sendable, Hashable {
        /// Which children a reaping pass collects.
        public enum Reaping: Sendable, Hashable {
            /// Only the children this supervisor spawned, each by its pid. Other code in the process can still
            /// wait for its own children. The default.
            case spawnedChildren
            /// Every child of the process (`waitpid(-1)`), including orphans reparented to it: what PID 1 or a
            /// subreaper must do. No other code in the process may then wait for a child.
            case allChildren
        }

        /// Where a forwarded signal goes.
        public enum ForwardTarget: Sendable, Hashable, CustomStringConvertible {
            /// The spawned child only (`kill(pid, signal)`).
            case child
            /// The spawned child's process group (`kill(-pid, signal)`): the child and every descendant that
            /// stayed in its group.
            case processGroup

            /// "child" or "process group".
            public var description: String { self == .child ? "child" : "process group" }
        }

        /// Which children a reaping pass collects. Default: ``Reaping-swift.enum/spawnedChildren``.
        public var reaping: Reaping
        /// Signals to forward to the spawned children. Default: none. SIGCHLD is never forwarded (it drives the
        /// reaping).
        public var forwardedSignals: SignalSet
        /// Where forwarded signals go. Default: ``ForwardTarget-swift.enum/child``.
        public var forwardTarget: ForwardTarget
        /// How long children may take to end after the first forwarded SIGTERM before every spawned child still
        /// running gets SIGKILL in its whole process group. Default nil: never.
        public var killGrace: Duration?

        /// Makes a configuration.
        public init(
            reaping: Reaping = .spawnedChildren, forwardedSignals: SignalSet = [],
            forwardTarget: ForwardTarget = .child, killGrace: Duration? = nil
        ) {
            self.reaping = reaping
            self.forwardedSignals = forwardedSignals
            self.forwardTarget = forwardTarget
            self.killGrace = killGrace
        }
    }

    /// What the supervisor did, for logging. Told to the observer on the supervisor's own tasks.
    public enum Event: Sendable, Equatable {
        /// A child was reaped; `spawned` says whether this supervisor spawned it (false: an orphan or a child of
        /// other code, under ``Configuration/Reaping-swift.enum/allChildren``).
        case reaped(ChildExit, spawned: Bool)
        /// A delivery of `signal` was sent on to child `pid` (or its process group); `error` when `kill` failed.
        case forwarded(Signal, pid: pid_t, target: Configuration.ForwardTarget, error: SignalError?)
        /// The grace period after the first forwarded SIGTERM ran out: SIGKILL was sent to process group `pid`;
        /// `error` when `kill` failed.
        case killedAfterGrace(pid: pid_t, grace: Duration, error: SignalError?)
    }

    /// The configuration the supervisor was made with.
    public let configuration: Configuration

    private enum Phase { case stopped, starting, running }

    private struct State {
        var phase = Phase.stopped
        /// Spawned children not reaped yet, by pid.
        var running: [pid_t: SupervisedChild] = [:]
        /// Runs the tasks and the grace timer (see ``LifecycleThread``).
        var thread: LifecycleThread?
        var tasks: [Task<Void, Never>] = []
        var graceStarted = false
    }

    /// Reaping, spawning and signalling all happen under this lock, so a pid is never signalled after it was
    /// reaped, and a child that ends before `spawn` returns is still found by the next pass.
    private let state = Mutex(State())
    private let observer: @Sendable (Event) -> Void
    /// Broadcast whenever a spawned child is reaped or abandoned, for ``SupervisedChild/waitForExit(timeout:)``.
    let exits = Gate()

    /// Forwarded deliveries that may wait for the forwarding task before the engine holds the rest in the kernel.
    static let forwardBuffer = 256

    /// Makes a supervisor; nothing happens until ``start()``.
    ///
    /// - Parameter observer: told about every reap, forward and kill, on the supervisor's tasks. Keep it short,
    ///   and do not call back into the supervisor from it.
    public init(configuration: Configuration = Configuration(), observer: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.configuration = configuration
        self.observer = observer
    }

    // MARK: Starting and stopping

    /// Subscribes to SIGCHLD and the forwarded signals (starting the engine, or adding them to what it
    /// watches) and starts the supervisor's thread ("supervisor") and the tasks on it that wait for them. Reaps
    /// at once every child that already ended. Does nothing when the supervisor already runs.
    public func start() throws(SignalError) {
        let proceed = state.withLock { state -> Bool in
            guard state.phase == .stopped else { return false }
            state.phase = .starting
            return true
        }
        guard proceed else { return }
        var forwarded = configuration.forwardedSignals
        forwarded.remove(.sigchld)
        let childEvents: SignalEvents
        let forwardedEvents: SignalEvents?
        let thread: LifecycleThread
        do {
            thread = try LifecycleThread(name: "supervisor")
        } catch {
            state.withLock { $0.phase = .stopped }
            throw error
        }
        do {
            // The newest SIGCHLD is enough: a pass that runs after it sees every exit made before it.
            childEvents = try childSupervisorEvents(for: [.sigchld], buffering: .bufferingNewest(1))
            // Every forwarded delivery reaches the children: a backlog waits in the kernel, not in a bin.
            forwardedEvents = forwarded.isEmpty
                ? nil
                : try childSupervisorEvents(for: forwarded, buffering: .backPressure(limit: ChildSupervisor.forwardBuffer))
        } catch {
            thread.end()
            state.withLock { $0.phase = .stopped }
            throw error
        }
        state.withLock { state in
            state.phase = .running
            state.thread = thread
            state.graceStarted = false
            state.tasks.append(Task(executorPreference: thread) { [self] in
                reapEndedChildren()  // those that ended before the subscription
                for await _ in childEvents { reapEndedChildren() }
            })
            if let forwardedEvents {
                state.tasks.append(Task(executorPreference: thread) { [self] in
                    for await event in forwardedEvents { forward(event.signal) }
                })
            }
        }
    }

    /// Stops waiting for signals: ends the supervisor's subscriptions, tasks, grace timer and thread. The
    /// spawned children keep running, unreaped; waiting for their exit returns nil. The engine keeps running and
    /// keeps watching the signals. ``start()`` may be called again.
    public func stop() {
        let (tasks, thread, abandoned) = state.withLock { state in
            defer {
                state.phase = .stopped
                state.tasks = []
                state.thread = nil
                state.running = [:]
            }
            return (state.tasks, state.thread, Array(state.running.values))
        }
        for task in tasks { task.cancel() }
        thread?.end()
        for child in abandoned { child.abandon() }
    }

    /// Whether the supervisor runs (between ``start()`` and ``stop()``).
    public var isRunning: Bool { state.withLock { $0.phase == .running } }

    /// The spawned children not reaped yet.
    public var runningChildren: [SupervisedChild] {
        state.withLock { state in state.running.values.sorted { $0.pid < $1.pid } }
    }

    // MARK: Spawning

    /// Starts `executable` as a supervised child: in a new process group whose id is its pid, with an empty
    /// signal mask and the default action for every signal.
    ///
    /// - Parameters:
    ///   - executable: the program; with `searchPath`, a name without a slash is looked up in `PATH`. It is
    ///     also the child's `argv[0]`.
    ///   - arguments: the arguments after `argv[0]`.
    ///   - environment: `NAME=value` strings; nil (default) passes this process's environment.
    ///   - searchPath: look `executable` up in `PATH` (`posix_spawnp`). Default true.
    ///   - foregroundTerminal: a terminal descriptor whose foreground process group becomes the child's, so
    ///     that the child can read the terminal and gets its Ctrl-C. Pass it only when this process is in the
    ///     terminal's foreground group.
    /// - Throws: ``SignalError/notRunning`` before ``start()``; ``SignalError/system(call:errno:)`` naming
    ///   `posix_spawnp` (or `posix_spawn`) with its errno: ENOENT when there is no such program, EACCES when it
    ///   is not executable.
    ///
    /// The corresponding C function is `posix_spawn`, with `POSIX_SPAWN_SETPGROUP`, `POSIX_SPAWN_SETSIGMASK`
    /// and `POSIX_SPAWN_SETSIGDEF`.
    public func spawn(
        _ executable: String, arguments: [String] = [], environment: [String]? = nil, searchPath: Bool = true,
        foregroundTerminal: CInt? = nil
    ) throws(SignalError) -> SupervisedChild {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        try ChildProcessSignals.configureSpawnAttributes(&attributes)
        var flags: Int16 = 0
        var err = posix_spawnattr_getflags(&attributes, &flags)
        if err != 0 { throw .system(call: "posix_spawnattr_getflags", errno: err) }
        err = posix_spawnattr_setpgroup(&attributes, 0)
        if err != 0 { throw .system(call: "posix_spawnattr_setpgroup", errno: err) }
        err = posix_spawnattr_setflags(&attributes, flags | Int16(POSIX_SPAWN_SETPGROUP))
        if err != 0 { throw .system(call: "posix_spawnattr_setflags", errno: err) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let terminal = foregroundTerminal {
            err = csignal_spawn_add_tcsetpgrp(&actions, terminal)
            if err != 0 { throw .system(call: "posix_spawn_file_actions_addtcsetpgrp_np", errno: err) }
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        let call = searchPath ? "posix_spawnp" : "posix_spawn"

        return try state.withLock { (state: inout State) throws(SignalError) -> SupervisedChild in
            guard state.phase == .running else { throw .notRunning }
            var pid: pid_t = 0
            let err: CInt
            if let envp {
                err = searchPath
                    ? posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
                    : posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            } else {
                err = searchPath
                    ? posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
                    : posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
            }
            if err != 0 { throw .system(call: call, errno: err) }
            let child = SupervisedChild(pid: pid, supervisor: self)
            state.running[pid] = child
            return child
        }
    }

    // MARK: Subreaper

    /// Makes this process a child subreaper (or stops being one): the kernel then reparents orphaned
    /// descendants to it instead of to init, so that a supervisor with
    /// ``Configuration/Reaping-swift.enum/allChildren`` reaps them. PID 1 needs no such call.
    ///
    /// The corresponding call is `prctl(PR_SET_CHILD_SUBREAPER)`.
    public static func setChildSubreaper(_ on: Bool = true) throws(SignalError) {
        let err = csignal_set_child_subreaper(on)
        if err != 0 { throw .system(call: "prctl(PR_SET_CHILD_SUBREAPER)", errno: err) }
    }

    /// Whether this process is a child subreaper. The corresponding call is `prctl(PR_GET_CHILD_SUBREAPER)`.
    public static var isChildSubreaper: Bool {
        var on = false
        return csignal_is_child_subreaper(&on) == 0 && on
    }

    // MARK: Internals

    /// One reaping pass: collects every child (of the configured kind) that has ended by now.
    private func reapEndedChildren() {
        var reaped: [(exit: ChildExit, child: SupervisedChild?)] = []
        var gone: [SupervisedChild] = []
        state.withLock { state in
            switch configuration.reaping {
            case .allChildren:
                while true {
                    var status: CInt = 0
                    let pid = waitpid(-1, &status, WNOHANG)
                    if pid > 0 {
                        let child = state.running.removeValue(forKey: pid)
                        if let exit = ChildExit(pid: pid, waitStatus: status) { reaped.append((exit, child)) }
                        continue
                    }
                    if pid < 0, errno == EINTR { continue }
                    break  // 0: none has ended; ECHILD: no children at all
                }
            case .spawnedChildren:
                for pid in Array(state.running.keys) {
                    var status: CInt = 0
                    var result: pid_t
                    repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
                    // ECHILD: someone else reaped it, against the contract; it is gone either way.
                    guard result == pid || (result < 0 && errno == ECHILD) else { continue }
                    let child = state.running.removeValue(forKey: pid)
                    if result == pid, let exit = ChildExit(pid: pid, waitStatus: status) {
                        reaped.append((exit, child))
                    } else if let child {
                        gone.append(child)
                    }
                }
            }
        }
        // Observer first: whoever waits for the child hears of the exit after the log line is written.
        for (exit, child) in reaped {
            observer(.reaped(exit, spawned: child != nil))
            child?.finish(exit)
        }
        for child in gone { child.abandon() }
    }

    /// Sends a delivery of `signal` on to every running spawned child; starts the grace timer on the first
    /// SIGTERM.
    private func forward(_ signal: Signal) {
        let target = configuration.forwardTarget
        let events = state.withLock { state -> [Event] in
            var events: [Event] = []
            for pid in state.running.keys.sorted() {
                let error = ChildSupervisor.kill(target == .child ? pid : -pid, signal)
                events.append(.forwarded(signal, pid: pid, target: target, error: error))
            }
            if signal == .sigterm, let grace = configuration.killGrace, !state.graceStarted, !state.running.isEmpty {
                // One-shot: the only timer the supervisor ever sets.
                state.graceStarted = true
                state.thread?.setTimer(after: grace) { [self] in killAfterGrace(grace) }
            }
            return events
        }
        for event in events { observer(event) }
    }

    private func killAfterGrace(_ grace: Duration) {
        let events = state.withLock { state -> [Event] in
            state.running.keys.sorted().map { pid in
                .killedAfterGrace(pid: pid, grace: grace, error: ChildSupervisor.kill(-pid, .sigkill))
            }
        }
        for event in events { observer(event) }
    }

    /// Signals `child` (or its process group) if it was not reaped yet; ESRCH if it was.
    func send(_ signal: Signal, to child: SupervisedChild, target: Configuration.ForwardTarget) throws(SignalError) {
        let error = state.withLock { state -> SignalError? in
            guard state.running[child.pid] === child else { return .system(call: "kill", errno: ESRCH) }
            return ChildSupervisor.kill(target == .child ? child.pid : -child.pid, signal)
        }
        if let error { throw error }
    }

    /// `kill(pid, signal)`; a negative pid names a process group.
    private static func kill(_ pid: pid_t, _ signal: Signal) -> SignalError? {
        do {
            try SignalSender.send(signal, to: pid)
            return nil
        } catch {
            return error
        }
    }
}
