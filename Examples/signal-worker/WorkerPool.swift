import CSignalShim
import SignalCore
import SignalCoreLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// N worker threads ("worker-1", "worker-2", ...) that claim jobs from the spool until it is empty (or, with
/// keep-running, until shutdown).
///
/// No wait outlasts a signal: the simulated work waits on the shutdown state for the job's delay (it wakes
/// early only when the deadline cancels work), and idle workers wait on the shutdown state with a timeout.
final class WorkerPool: Sendable {
    let spool: Spool
    let shutdown: GracefulShutdown
    let keepRunning: Bool
    /// The effective config: the reloaded file with the command line's overrides applied.
    let config: @Sendable () -> WorkerConfig

    let jobsDone = Atomic<Int>(0)
    let jobsCancelled = Atomic<Int>(0)
    let jobsFailed = Atomic<Int>(0)
    let busy = Atomic<Int>(0)
    private let running = Atomic<Int>(0)
    private let started = Mutex<Int>(0)
    private let finished = Gate()

    /// How often an idle worker looks for new jobs in keep-running mode.
    static let pollInterval = Duration.milliseconds(200)

    init(spool: Spool, shutdown: GracefulShutdown, keepRunning: Bool, config: @escaping @Sendable () -> WorkerConfig) {
        self.spool = spool
        self.shutdown = shutdown
        self.keepRunning = keepRunning
        self.config = config
    }

    /// Workers alive now.
    var alive: Int { running.load(ordering: .relaxed) }

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

    /// Waits until every worker thread ended, or `timeout`. Returns whether they all did.
    func waitForAll(timeout: Duration) -> Bool {
        finished.wait(timeout: timeout) { running.load(ordering: .acquiring) == 0 }
    }

    func spawn(_ index: Int) {
        running.add(1, ordering: .acquiringAndReleasing)
        let handle = WorkerThread(pool: self, index: index)
        let box = Unmanaged.passRetained(handle).toOpaque()
        var thread = pthread_t()
        let err = pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<WorkerThread>.fromOpaque(raw!).takeRetainedValue()
            csignal_set_thread_name("worker-\(worker.index + 1)")
            worker.started.update { worker.running = true }
            worker.pool.loop(index: worker.index)
            return nil
        }, box)
        if err != 0 {
            Unmanaged<WorkerThread>.fromOpaque(box).release()
            running.subtract(1, ordering: .acquiringAndReleasing)
            Log.error("pthread_create failed for worker \(index + 1): errno \(err)")
            return
        }
        pthread_detach(thread)
        // Wait until it runs under its name, so that the thread list after scale() shows every worker.
        _ = handle.started.wait(timeout: .seconds(10)) { handle.running }
    }

    func loop(index: Int) {
        defer {
            running.subtract(1, ordering: .acquiringAndReleasing)
            finished.broadcast()
        }
        while !shutdown.isShuttingDown {
            let current = config()
            if index >= current.concurrency {
                // Parked by a reload that lowered concurrency.
                if !keepRunning, spool.waitingCount() == 0 { return }
                _ = shutdown.wait(for: .draining, timeout: WorkerPool.pollInterval)
                continue
            }
            guard let job = spool.claim() else {
                if !keepRunning { return }
                _ = shutdown.wait(for: .draining, timeout: WorkerPool.pollInterval)
                continue
            }
            process(job, worker: index + 1, config: current)
        }
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

private final class WorkerThread: @unchecked Sendable {
    // @unchecked: handed to exactly one new thread through pthread_create; `running` is guarded by `started`.
    let pool: WorkerPool
    let index: Int
    let started = Gate()
    var running = false
    init(pool: WorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
