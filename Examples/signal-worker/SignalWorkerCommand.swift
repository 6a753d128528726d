import ArgumentParser
import CSignalShim
import SignalCore
import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#endif

extension ExitMode: ExpressibleByArgument {}

/// signal-worker: a spool-directory job processor that stays in control of its own fate.
@main
struct SignalWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal-worker",
        abstract: "Process jobs from a spool directory, under the control of Unix signals.",
        discussion: """
            Jobs move incoming/ -> processing/ -> done/ by atomic renames; whatever a killed run left in \
            processing/ goes back to incoming/ at start.

            SIGTERM or SIGINT: graceful stop. Jobs in hand finish and no new job starts; after --deadline \
            seconds the rest is cancelled (put back into incoming/). A second SIGTERM or SIGINT exits at once.

            SIGHUP: reload the config file (a missing or bad file keeps the current config); with \
            --keep-running, also look at incoming/ again.

            SIGUSR1: print one JSON stats line on standard output.

            SIGUSR2: print a stack trace of every thread on standard error.

            With no arguments: a new temporary spool with 300 generated jobs and a default config; it prints \
            where they are and exits 0 when all jobs are done. Logs go to standard error.

            Exit status: 0 when all jobs are done; after a signal, death by that signal (--exit-mode reraise, a \
            shell shows 128+n) or exit 128+n (--exit-mode code); 64 bad arguments, 66 spool directory missing, \
            74 spool I/O error, 78 unusable config file.
            """)

    @Option(help: ArgumentHelp(
        "Spool directory; incoming/, processing/ and done/ are created inside. It must exist (see --create-spool). Default: a new temporary directory.",
        valueName: "dir"))
    var spool: String?

    @Flag(help: "Create the --spool directory if it does not exist.")
    var createSpool = false

    @Option(help: ArgumentHelp(
        "JSON config file (name, concurrency, job_delay_ms, log_level), reloaded on SIGHUP. Written with the defaults if it does not exist. Default: <spool>/config.json.",
        valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp(
        "Add this many generated jobs to incoming/ before starting. Default: 300 with a temporary spool, else 0.",
        valueName: "n"))
    var generate: Int?

    @Option(help: ArgumentHelp(
        "Worker threads (1...64). Overrides the config file's concurrency, also across reloads.", valueName: "n"))
    var workers: Int?

    @Option(name: .customLong("job-delay-ms"), help: ArgumentHelp(
        "Simulated work per job, in milliseconds. Overrides the config file's job_delay_ms, also across reloads.",
        valueName: "ms"))
    var jobDelayMs: Int?

    @Option(help: ArgumentHelp(
        "Seconds a graceful stop may take after the first SIGTERM/SIGINT; then jobs in hand are cancelled and the process ends.",
        valueName: "seconds"))
    var deadline: Double = 25

    @Option(help: ArgumentHelp(
        "How to end after a signal: reraise (die by the signal, as the parent should see it) or code (exit 128+n).",
        valueName: "mode"))
    var exitMode: ExitMode = .reraise

    @Flag(help: "Keep running when incoming/ is empty, waiting for new jobs (inotify tells when one is moved or written into incoming/), until a signal stops it. Default: exit 0 once every job is done.")
    var keepRunning = false

    /// Like ArgumentParser's own main, except that a bad argument is reported in one line (the usage is one
    /// `--help` away), so that scripts and logs get a clear single error.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }  // --help, or already reported
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            writeAll(2, "signal-worker: error: \(message) (see --help)\n")
            Glibc.exit(code.rawValue)
        }
    }

    mutating func run() throws {
        if let workers, !(1...WorkerConfig.maximumConcurrency).contains(workers) {
            throw fail("--workers must be in 1...\(WorkerConfig.maximumConcurrency), not \(workers)", 64)
        }
        if let jobDelayMs, !(0...600_000).contains(jobDelayMs) {
            throw fail("--job-delay-ms must be in 0...600000, not \(jobDelayMs)", 64)
        }
        if let generate, generate < 0 { throw fail("--generate must not be negative", 64) }
        guard deadline.isFinite, deadline >= 0, deadline <= 86_400 else {
            throw fail("--deadline must be in 0...86400 seconds, not \(deadline)", 64)
        }

        // The spool.
        let root: String
        let temporary = spool == nil
        if let spool {
            var info = stat()
            if stat(spool, &info) != 0 {
                if !createSpool {
                    throw fail("spool directory \(spool) does not exist (create it, or pass --create-spool)", 66)
                }
                if mkdir(spool, 0o755) != 0 { throw fail("cannot create spool directory \(spool): \(describeErrno())", 66) }
            } else if (info.st_mode & S_IFMT) != S_IFDIR {
                throw fail("spool \(spool) is not a directory", 66)
            }
            root = spool
        } else {
            let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
            var template = Array((base + "/signal-worker.XXXXXX").utf8CString)
            guard mkdtemp(&template) != nil else { throw fail("cannot create a temporary spool in \(base): \(describeErrno())", 66) }
            root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let spool = Spool(root: root)

        // The config: written with the defaults when missing, refused (exit 78) when unusable.
        let configPath = config ?? root + "/config.json"
        var wroteDefault = false
        if access(configPath, F_OK) != 0 {
            if let why = WorkerConfig.writeDefault(to: configPath) {
                throw fail("cannot write the default config to \(configPath): \(why)", 78)
            }
            wroteDefault = true
        }
        let initial: WorkerConfig
        do {
            initial = try ConfigReloader<WorkerConfig>.load(path: configPath, validate: { try $0.validate() })
        } catch {
            throw fail("cannot use config: \(error)", 78)
        }
        Log.setLevel(initial.level)

        // Signals first, so that a SIGTERM during recovery or generation is already a graceful stop. Each
        // pattern subscribes to the signals it handles, which makes the engine watch them (the first one starts
        // it).
        let startedAt = ContinuousClock.now
        let exitMode = self.exitMode
        // What the pool's threads and this thread sleep on (see PoolState).
        let changes = Condition(PoolState())
        let shutdown = GracefulShutdown(
            configuration: .init(deadline: .milliseconds(Int64(deadline * 1000)), exitMode: exitMode),
            observer: { transition in
                switch transition {
                case .draining(let signal, let deadline):
                    let name = signal.map(\.description) ?? "request"
                    Log.info("shutdown requested by \(name): finishing the jobs in hand, starting no new ones; deadline \(deadline) (send it again to exit at once)")
                case .deadlinePassed(let deadline):
                    Log.warning("shutdown deadline (\(deadline)) passed: cancelling the jobs in hand")
                case .immediateExit(let signal):
                    Log.warning("\(signal) during shutdown: exiting now")
                case .duplicateIgnored(let signal, let pid):
                    Log.info("\(signal) from pid \(pid) again right away: the same request delivered twice (timeout(1) signals the child and its process group), not a second one")
                }
            })
        let keepRunning = self.keepRunning
        let reloader = ConfigReloader<WorkerConfig>(
            path: configPath, initial: initial, validate: { try $0.validate() },
            observer: { outcome in
                switch outcome {
                case .applied(let generation):
                    Log.info("config reloaded: generation \(generation)")
                case .rejected(let error):
                    Log.warning("config reload refused, keeping the current config: \(error)")
                }
                // SIGHUP also means "look at the spool again": for what inotify cannot see (a spool on a
                // network file system). The main thread rescales the pool; idle workers list incoming/ again.
                if keepRunning { Log.info("rescanning incoming/: \(spool.waitingCount()) job(s) waiting") }
                changes.update {
                    $0.reloads &+= 1
                    $0.generation &+= 1
                }
            })
        let workers = self.workers, jobDelayMs = self.jobDelayMs
        let effective: @Sendable () -> WorkerConfig = {
            var config = reloader.config
            if let workers { config.concurrency = workers }
            if let jobDelayMs { config.jobDelayMs = jobDelayMs }
            return config
        }
        let pool = WorkerPool(spool: spool, shutdown: shutdown, keepRunning: keepRunning, changes: changes,
                              config: effective)
        let reporter = StatsReporter(signals: [.sighup, .sigint, .sigusr1, .sigusr2, .sigterm], startedAt: startedAt)
        do {
            try shutdown.start()
            try reloader.start()
            _ = try reporter.start(on: .sigusr1, counters: {
                let config = effective()
                let state = shutdown.phase
                return [
                    ("worker_name", .string(config.name)),
                    ("jobs_done", .int(Int64(pool.jobsDone.load(ordering: .relaxed)))),
                    ("jobs_in_progress", .int(Int64(pool.busy.load(ordering: .relaxed)))),
                    ("jobs_waiting", .int(Int64(spool.waitingCount()))),
                    ("jobs_cancelled", .int(Int64(pool.jobsCancelled.load(ordering: .relaxed)))),
                    ("jobs_failed", .int(Int64(pool.jobsFailed.load(ordering: .relaxed)))),
                    ("workers", .int(Int64(config.concurrency))),
                    ("config_generation", .int(Int64(reloader.generation))),
                    ("config_reloads_refused", .int(Int64(reloader.statistics.rejected))),
                    ("state", .string(state.description)),
                ]
            }, write: { line in writeAll(1, line + "\n") })
            _ = try ThreadDump.start(on: .sigusr2, write: { text in
                writeAll(2, text + "\n")
            })
        } catch {
            throw fail("cannot watch signals: \(error)", 71)
        }
        // Idle workers and this thread sleep until something changes: the start of draining is such a change.
        shutdown.onDraining { pool.wake() }

        // The spool. With keep-running, the inotify watch on incoming/ comes before the first look at it, so
        // that a job arriving in between is seen; the workers' first claim is the rescan on start.
        let recovered: (requeued: [String], alreadyDone: [String])
        let generated: ClosedRange<Int>?
        var watcher: SpoolWatcher? = nil
        do {
            try spool.prepare()
            if keepRunning { watcher = try SpoolWatcher(directory: spool.incoming) }
            recovered = try spool.recover()
            generated = try spool.generate(generate ?? (temporary ? 300 : 0))
        } catch {
            throw fail("spool \(root): \(error)", 74)
        }
        if let watcher {
            let err = watcher.start { pool.wake() }
            if err != 0 { throw fail("cannot start the spool watcher thread: pthread_create: errno \(err)", 71) }
        }

        csignal_set_thread_name("signal-worker")

        if wroteDefault { Log.info("wrote the default config to \(configPath)") }
        if !recovered.requeued.isEmpty {
            Log.info("recovered \(recovered.requeued.count) interrupted job(s) from processing/: \(recovered.requeued.joined(separator: " "))")
        }
        if !recovered.alreadyDone.isEmpty {
            Log.info("removed \(recovered.alreadyDone.count) finished job(s) from processing/: \(recovered.alreadyDone.joined(separator: " "))")
        }
        if let generated { Log.info("generated \(generated.count) job(s): \(Spool.id(generated.lowerBound))...\(Spool.id(generated.upperBound))") }
        pool.scale()
        let pid = getpid()
        Log.info("ready pid=\(pid) spool=\(root) config=\(configPath) workers=\(effective().concurrency) jobs_waiting=\(spool.waitingCount()) exit_mode=\(exitMode.rawValue) deadline=\(deadline)s keep_running=\(keepRunning)")
        Log.info("try: kill -USR1 \(pid) (stats) | kill -USR2 \(pid) (thread dump) | kill -HUP \(pid) (reload \(configPath)) | kill -TERM \(pid) (graceful stop)")

        // Sleep until shutdown starts, every job is done (without keep-running), or a reload may have changed the
        // concurrency. No timeout: nothing here needs a look at the clock.
        var reloadsSeen = changes.read { $0.reloads }
        while true {
            let state = changes.read { $0 }
            if shutdown.isShuttingDown { break }
            if !keepRunning, state.running == 0 { break }
            if state.reloads != reloadsSeen {
                reloadsSeen = state.reloads
                pool.scale()
                continue
            }
            changes.wait { shutdown.isShuttingDown || (!keepRunning && $0.running == 0) || $0.reloads != reloadsSeen }
        }
        if shutdown.isShuttingDown {
            // Workers finish their jobs in hand; past the deadline the monitor cancels them and, after a short
            // grace, ends the process itself.
            pool.waitForAll()
            Log.info("stopped: jobs_done=\(pool.jobsDone.load(ordering: .relaxed)) jobs_cancelled=\(pool.jobsCancelled.load(ordering: .relaxed)) jobs_waiting=\(spool.waitingCount()) jobs_processing=\(spool.processingCount())")
            shutdown.finish()
        }
        Log.info("all jobs done: jobs_done=\(pool.jobsDone.load(ordering: .relaxed)) spool=\(root)")
        shutdown.finish(status: pool.jobsFailed.load(ordering: .relaxed) == 0 ? 0 : 1)
    }

    /// Prints a one-line error and returns the exit status to throw.
    private func fail(_ message: String, _ code: Int32) -> ExitCode {
        writeAll(2, "signal-worker: error: \(message)\n")
        return ExitCode(code)
    }

    private func describeErrno() -> String {
        let code = errno
        return "\(String(cString: strerror(code))) (errno: \(code))"
    }
}

