import CSignalShim
import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A named thread of a lifecycle component ("shutdown", "reload", "stats", "dump", "supervisor"): a task
/// executor of its own, plus plain closures and one one-shot timer.
///
/// Why not the global concurrent executor: on Linux that is libdispatch, whose thread pool starts a monitor
/// timer the first time one of its worker threads runs, and that timer wakes a thread once a second for the rest
/// of the process's life. A component's work would make the process never idle again. This thread sleeps on a
/// condition variable, with no timeout, until a job or a closure arrives (a signal event resumes a component's
/// task) or its timer is due; an idle component therefore causes no wake-up at all.
///
/// Its name lets `/proc/PID/task/*/comm`, ``SignalEngine/auditThreads()`` and a ``ThreadDump`` tell which
/// component a thread belongs to.
final class LifecycleThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `work`, `timer`, `ending` and `running` are only touched inside `gate`'s closures, with its
    // mutex held.
    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    private let gate = Gate()
    private var work: [Work] = []
    private var timer: (deadline: ContinuousClock.Instant, action: @Sendable () -> Void)?
    private var ending = false
    private var running = false

    /// Starts the thread, named `name` (15 bytes kept), and returns once it runs under that name.
    init(name: String) throws(SignalError) {
        let box = Unmanaged.passRetained(Start(thread: self, name: name)).toOpaque()
        var thread = pthread_t()
        let err = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            csignal_set_thread_name(start.name)
            start.thread.gate.update { start.thread.running = true }
            start.thread.run()
            return nil
        }, box)
        if err != 0 {
            Unmanaged<Start>.fromOpaque(box).release()
            throw .system(call: "pthread_create", errno: err)
        }
        pthread_detach(thread)
        // A thread list taken after init shows the thread by its name. Bounded: a new thread runs at once.
        _ = gate.wait(timeout: .seconds(10)) { running }
    }

    /// What the new thread needs; it keeps the executor alive for as long as the thread runs.
    private final class Start {
        let thread: LifecycleThread
        let name: String
        init(thread: LifecycleThread, name: String) {
            self.thread = thread
            self.name = name
        }
    }

    /// Runs `job` on the thread; after ``end()``, on the global concurrent executor. Called by the Swift runtime.
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !add(.job(job)) { globalConcurrentExecutor.enqueue(job) }
    }

    /// Runs `body` on the thread, after the work queued before it. Returns false (and runs nothing) after
    /// ``end()``.
    @discardableResult
    func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        add(.closure(body))
    }

    private func add(_ item: Work) -> Bool {
        gate.update { () -> Bool in
            if ending { return false }
            work.append(item)
            return true
        }
    }

    /// Runs `action` on the thread once, `delay` from now, unless ``cancelTimer()`` or ``end()`` comes first.
    /// Replaces a timer that was set before. May be called from any thread: the thread reads the deadline again
    /// whenever the timer changes.
    func setTimer(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let deadline = ContinuousClock.now + delay
        gate.update { timer = (deadline, action) }
    }

    func cancelTimer() { gate.update { timer = nil } }

    /// Lets the thread finish the work queued now and exit; work that comes later goes to the global executor
    /// (jobs) or is refused (closures).
    func end() {
        gate.update {
            ending = true
            timer = nil
        }
    }

    private func run() {
        let clock = ContinuousClock()
        var batch: [Work] = []
        while true {
            // No timer: sleep until work comes, with no timeout.
            _ = gate.wait(due: { timer?.deadline }) {
                !work.isEmpty || ending || (timer.map { clock.now >= $0.deadline } ?? false)
            }
            let (due, exit) = gate.read { () -> ((@Sendable () -> Void)?, Bool) in
                swap(&batch, &work)
                var due: (@Sendable () -> Void)? = nil
                if let current = timer, clock.now >= current.deadline {
                    due = current.action
                    timer = nil
                }
                return (due, ending)
            }
            for item in batch {
                switch item {
                case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
                case .closure(let body): body()
                }
            }
            batch.removeAll(keepingCapacity: true)
            due?()
            // Once ending, no work is accepted any more: this batch was the last.
            if exit { return }
        }
    }
}

extension LifecycleThread {
    /// Starts a thread named `name` that calls `answer` once per request that `signal` brings, and returns the
    /// task that waits for them (cancel it to stop; the thread ends with it). Requests coalesce: the subscription
    /// keeps only the newest delivery not answered yet (``SignalBuffering/bufferingNewest(_:)`` of 1), so any
    /// number of requests that arrive while one is answered get one more answer.
    static func answering(
        _ signal: Signal, name: String, with answer: @escaping @Sendable () -> Void
    ) throws(SignalError) -> Task<Void, Never> {
        let thread = try LifecycleThread(name: name)
        let events: SignalEvents
        do {
            events = try SignalEngine.shared.events(for: [signal], buffering: .bufferingNewest(1))
        } catch {
            thread.end()
            throw error
        }
        return Task(executorPreference: thread) {
            defer { thread.end() }
            for await _ in events { answer() }
        }
    }
}
