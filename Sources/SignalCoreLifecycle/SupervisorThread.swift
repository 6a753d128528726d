import CSignalShim
import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The thread a ``ChildSupervisor``'s tasks run on: a task executor of its own, with one one-shot timer.
///
/// Why not the global concurrent executor: on Linux that is libdispatch, whose thread pool starts a monitor
/// timer the first time one of its worker threads runs, and that timer wakes the dispatch manager thread once a
/// second for the rest of the process's life. An init such as signal-run would never be idle. This thread sleeps
/// on a condition variable until a job arrives (a signal event resumes a supervisor task) or its timer is due.
final class SupervisorThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs`, `timer` and `ending` are only touched inside `gate`'s closures, with its mutex held.
    private let gate = Gate()
    private var jobs: [UnownedJob] = []
    private var timer: (deadline: ContinuousClock.Instant, action: @Sendable () -> Void)?
    private var ending = false

    /// Starts the thread, named `name` (15 bytes kept).
    init(name: String) throws(SignalError) {
        let box = Unmanaged.passRetained(Start(thread: self, name: name)).toOpaque()
        var thread = pthread_t()
        let err = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            csignal_set_thread_name(start.name)
            start.thread.run()
            return nil
        }, box)
        if err != 0 {
            Unmanaged<Start>.fromOpaque(box).release()
            throw .system(call: "pthread_create", errno: err)
        }
        pthread_detach(thread)
    }

    private final class Start {
        let thread: SupervisorThread
        let name: String
        init(thread: SupervisorThread, name: String) {
            self.thread = thread
            self.name = name
        }
    }

    /// Runs `job` on the thread; after ``end()``, on the global concurrent executor. Called by the Swift runtime.
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = gate.update { () -> Bool in
            if ending { return false }
            jobs.append(job)
            return true
        }
        if !accepted { globalConcurrentExecutor.enqueue(job) }
    }

    /// Runs `action` on the thread once, `delay` from now, unless ``cancelTimer()`` or ``end()`` comes first.
    /// Replaces a timer that was set before.
    func setTimer(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let deadline = ContinuousClock.now + delay
        gate.update { timer = (deadline, action) }
    }

    func cancelTimer() { gate.update { timer = nil } }

    /// Lets the thread finish the jobs queued now and exit; jobs that come later go to the global executor.
    func end() {
        gate.update {
            ending = true
            timer = nil
        }
    }

    private func run() {
        let clock = ContinuousClock()
        while true {
            let deadline = gate.update { timer?.deadline }
            // No timer: sleep until a job comes (Gate caps a wait at a year; the loop then just waits again).
            let timeout = deadline.map { $0 - clock.now } ?? .seconds(365 * 86_400)
            _ = gate.wait(timeout: timeout) {
                !jobs.isEmpty || ending || (timer.map { clock.now >= $0.deadline } ?? false)
            }
            let (batch, due, exit) = gate.update { () -> ([UnownedJob], (@Sendable () -> Void)?, Bool) in
                let batch = jobs
                jobs.removeAll(keepingCapacity: true)
                var due: (@Sendable () -> Void)? = nil
                if let current = timer, clock.now >= current.deadline {
                    due = current.action
                    timer = nil
                }
                return (batch, due, ending)
            }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            due?()
            // Once ending, no job is accepted any more: this batch was the last.
            if exit { return }
        }
    }
}
