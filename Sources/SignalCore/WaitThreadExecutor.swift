import CSignalShim
import Synchronization

/// A task executor that runs jobs on the engine's wait thread ("signalcore"), right after it hands a batch of
/// deliveries to Swift. Jobs run on that thread only, never on a thread that borrowed the wait role in
/// ``SignalSubscription/next(timeout:)``.
///
/// A task that awaits signal events with this executor as its preference is resumed on the wait thread itself,
/// without waking another thread: the latency from the kernel to your code is then one thread wake-up, the
/// same as a bare `sigwaitinfo` loop.
///
/// ```swift
/// await withTaskExecutorPreference(SignalEngine.shared.executor) {
///     for await event in SignalEngine.shared.events(for: [.sigusr1]) { handle(event) }
/// }
/// ```
///
/// The price: while your code runs there, the wait thread records nothing (deliveries wait in the kernel:
/// real-time ones queue, standard ones coalesce). Keep the work per event short, or hand it on. When the
/// engine is stopped, jobs go to the global concurrent executor instead.
public final class WaitThreadExecutor: TaskExecutor, Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        /// True while a wait thread exists to run the jobs.
        var open = false
    }

    private let queue = Mutex(Queue())

    init() {}

    /// Runs `job` on the wait thread after its current hand-over, or on the global concurrent executor when the
    /// engine is stopped. Called by the Swift runtime, not by you.
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let accepted = queue.withLock { queue -> Bool in
            guard queue.open else { return false }
            queue.jobs.append(unowned)
            return true
        }
        guard accepted else {
            globalConcurrentExecutor.enqueue(unowned)
            return
        }
        // On the wait thread (a continuation resumed while it hands records over) this only raises the flag it
        // looks at before it sleeps; from any other thread it also rings it.
        csignal_waiter_wake_for_jobs()
    }

    /// Jobs taken out of the queue and being run. Touched only by the wait thread, so it needs no lock; swapping
    /// it with the queue's array keeps both buffers allocated.
    private nonisolated(unsafe) var running: [UnownedJob] = []

    /// Runs the queued jobs (and the jobs they enqueue, up to a bound). Called by the wait thread only.
    func runQueued() {
        for _ in 0..<64 {
            queue.withLock { swap(&$0.jobs, &running) }
            if running.isEmpty { return }
            for job in running { job.runSynchronously(on: asUnownedTaskExecutor()) }
            running.removeAll(keepingCapacity: true)
        }
        // Still more: let the wait thread look at the kernel first, then come back.
        csignal_waiter_wake_for_jobs()
    }

    /// Accepts jobs from now on (the wait thread exists).
    func open() { queue.withLock { $0.open = true } }

    /// Stops accepting jobs and hands the queued ones to the global executor (the wait thread is gone).
    func close() {
        let jobs = queue.withLock { queue -> [UnownedJob] in
            queue.open = false
            let taken = queue.jobs
            queue.jobs.removeAll()
            return taken
        }
        for job in jobs { globalConcurrentExecutor.enqueue(job) }
    }
}
