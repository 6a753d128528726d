import SignalCoreLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the pool's threads and the main thread sleep on: changes that may give a sleeping thread something to
/// do. Every change bumps `generation`; a thread notes the generation before it looks for work and sleeps until
/// it moves, so a change between its look and its sleep is never missed.
struct PoolState {
    /// Bumped when jobs may have arrived (inotify, a rescan), the config was reloaded, shutdown started, or a
    /// worker ended.
    var generation: UInt64 = 0
    /// Applied or refused reloads so far: the main thread rescales the pool when this moves.
    var reloads: UInt64 = 0
    /// Worker threads alive.
    var running = 0
}

/// N worker threads ("worker-1", "worker-2", ...) that claim jobs from the spool until it is empty (or, with
/// keep-running, until shutdown).
///
/// No thread polls. An idle worker sleeps on ``changes`` until something happens: the spool watcher reports new
/// files, SIGHUP asks for a rescan, a reload changes the concurrency, shutdown starts, or another worker ends.
/// The simulated work waits on the shutdown state for the job's delay (it wakes early only when the deadline
/// cancels work).
final class WorkerPool: Sendable {
    let spool: Spool
    let shutdown: GracefulShutdown
    let keepRunning: Bool
    /// The effective config: the reloaded file with the command line's overrides applied.
    let config: @Sendable () -> WorkerConfig
    let changes: Condition<PoolState>

    let jobsDone = Atomic<Int>(0)
    let jobsCancelled = Atomic<Int>(0)
    let jobsFailed = Atomic<Int>(0)
    let busy = Atomic<Int>(0)
    private let started = Mutex<Int>(0)

    init(spool: Spool, shutdown: GracefulShutdown, keepRunning: Bool, changes: Condition<PoolState>,
         config: @escaping @Sendable () -> WorkerConfig) {
        self.spool = spool
        self.shutdown = shutdown
        self.keepRunning = keepRunning
        self.changes = changes
        self.config = config
    }

    /// Workers alive now.
    var alive: Int { changes.read { $0.running } }

    /// Wakes every sleeping thread to look again: jobs may have arrived, or the state changed.
    func wake() { changes.update { $0.generation &+= 1 } }

    /// Starts threads up to the configured concurrency (more later, if a reload raises it).
    func scale() {
        let want = config().concurrency
        let toStart = started.withLock { count -> Range<Int> in
            let range = count..<max(count, want)
            count = max(count, want)
            return range
        }
        for index in toStart { spawn(index) }
    }

    /// Sleeps until every worker thread ended. The shutdown monitor bounds this: past the deadline it cancels
    /// the jobs in hand, and after the grace it ends the process itself.
    func waitForAll() {
        changes.wait { $0.running == 0 }
    }

    func spawn(_ index: Int) {
        changes.update { $0.running += 1 }
        let err = startNamedThread("worker-\(index + 1)") { [self] in loop(index: index) }
        if err != 0 {
            changes.update {
                $0.running -= 1
                $0.generation &+= 1
            }
            Log.error("pthread_create failed for worker \(index + 1): errno \(err)")
        }
    }

    func loop(index: Int) {
        defer {
            // Parked workers and the main thread look again: this one may have been the last.
            changes.update {
                $0.running -= 1
                $0.generation &+= 1
            }
        }
        while !shutdown.isShuttingDown {
            let seen = changes.read { $0.generation }
            let current = config()
            if index >= current.concurrency {
                // Parked by a reload that lowered concurrency.
                if !keepRunning, spool.waitingCount() == 0 { return }
                sleep(since: seen)
                continue
            }
            // Nil only after a fresh listing found nothing to claim, made after `seen` was read.
            guard let job = spool.claim() else {
                if !keepRunning { return }
                sleep(since: seen)
                continue
            }
            process(job, worker: index + 1, config: current)
        }
    }

    /// Sleeps until something changed since generation `seen`, or shutdown started.
    func sleep(since seen: UInt64) {
        changes.wait { $0.generation != seen || shutdown.isShuttingDown }
    }

    func process(_ job: Job, worker: Int, config: WorkerConfig) {
        busy.add(1, ordering: .relaxed)
        defer { busy.subtract(1, ordering: .relaxed) }
        let clock = ContinuousClock()
        let start = clock.now
        Log.debug("job started \(job.id) worker=\(worker)")
        let payload = spool.payload(of: job)

        // The simulated work: the job's delay, cut short only when the shutdown deadline cancels work.
        if shutdown.wait(for: .cancelled, timeout: .milliseconds(config.jobDelayMs)) {
            do {
                try spool.requeue(job)
                jobsCancelled.add(1, ordering: .relaxed)
                Log.warning("job cancelled \(job.id) worker=\(worker): the shutdown deadline passed; back in incoming/")
            } catch {
                Log.error("job cancelled \(job.id) but could not be requeued: \(error); it stays in processing/ for the next start")
            }
            return
        }

        let checksum = payload.utf8.reduce(UInt64(0xcbf29ce484222325)) { ($0 ^ UInt64($1)) &* 0x100000001b3 }
        let elapsed = clock.now - start
        let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        let result = "{\"id\":\"\(job.id)\",\"worker\":\"\(config.name)\",\"worker_index\":\(worker),\"pid\":\(getpid()),"
            + "\"checksum\":\"\(String(checksum, radix: 16))\",\"elapsed_ms\":\(ms)}\n"
        do {
            try spool.complete(job, result: result)
            let total = jobsDone.add(1, ordering: .relaxed).newValue
            Log.debug("job done \(job.id) worker=\(worker) ms=\(ms)")
            if total % 50 == 0 { Log.info("\(total) jobs done") }
        } catch {
            jobsFailed.add(1, ordering: .relaxed)
            Log.error("job failed \(job.id) worker=\(worker): \(error)")
        }
    }
}
