// The Swift benchmark receivers: SignalCore's paths and the Swift peers, one per process.
//
//   BenchReceiver MODE SHM [N]
//
// Latency/flood modes watch SIGUSR1 (slot 0) and SIGRTMIN (slot 1) and call cbench_seen() the moment user code
// sees a delivery; the driver SIGKILLs them when done. Cost modes measure once and publish results in the page.
import CBench
import Dispatch
import SignalCore
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
/// Writes a line to standard error (no stdio: stderr is a C global Swift 6 will not touch).
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

guard arguments.count >= 3 else {
    printError("usage: BenchReceiver MODE SHM [N]")
    exit(2)
}
let mode = arguments[1]
guard let page = cbench_map(arguments[2], 0) else {
    perror("cbench_map")
    exit(2)
}
nonisolated(unsafe) let shm = page
let count = arguments.count > 3 ? Int(arguments[3]) ?? 0 : 0
let rt = Signal.realtimeMinimum
let engine = SignalEngine.shared

func fail(_ message: String) -> Never {
    printError("BenchReceiver \(mode): \(message)")
    exit(1)
}

func start(_ configuration: SignalEngine.Configuration = .init(), watching: SignalSet? = nil) {
    do { try engine.start(watching: watching ?? [.sigusr1, rt], configuration: configuration) } catch {
        fail("start: \(error)")
    }
}

/// What user code reports for one event: the slot, and the sigqueue value when it was queued.
@Sendable @inline(__always)
func seen(_ event: SignalEvent) {
    let value = event.code == SignalEvent.Code.queue ? UInt64(UInt32(bitPattern: event.value)) : 0
    cbench_seen(shm, event.signal == .sigusr1 ? 0 : 1, value)
}

/// Parks the main thread for good (the driver kills the process).
func park() -> Never {
    while true { sleep(1000) }
}

/// The malloc counter of the preloaded libBenchMallocCounter.so, or nil without the preload.
let mallocCounter: (@convention(c) () -> UInt64)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cmalloc_counter_total") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
}()

@inline(never) func blackHole(_ value: Bool) {}
@inline(never) func blackHole(_ value: UInt64) {}
@inline(never) func blackHole(_ value: Int) {}

switch mode {
// `for await` over engine.events(for:) in an ordinary task on the global executor.
case "sc-await":
    start()
    let events = engine.events(for: [.sigusr1, rt], bufferingLimit: 1 << 17)
    Task.detached {
        for await event in events { seen(event) }
    }
    cbench_set_ready(shm)
    park()

// The same loop, with the engine's task executor preferred, so the task resumes on the wait thread.
case "sc-await-executor":
    start()
    let events = engine.events(for: [.sigusr1, rt], bufferingLimit: 1 << 17)
    Task.detached {
        await withTaskExecutorPreference(engine.executor) {
            for await event in events { seen(event) }
        }
    }
    cbench_set_ready(shm)
    park()

// subscription.next(timeout:) on the main thread.
case "sc-blocking":
    start()
    let subscription = engine.subscribe(to: [.sigusr1, rt], bufferingLimit: 1 << 17)
    cbench_set_ready(shm)
    while true {
        if let event = subscription.next(timeout: .seconds(10)) { seen(event) }
    }

// A spinning loop over poller.hasNew on the main thread: counts, no records.
case "sc-poll":
    start()
    var usr1 = engine.poller(for: .sigusr1)
    var realtime = engine.poller(for: rt)
    cbench_set_ready(shm)
    while true {
        if usr1.hasNew { cbench_seen_many(shm, 0, usr1.poll()) }
        if realtime.hasNew { cbench_seen_many(shm, 1, realtime.poll()) }
    }

// libdispatch's signal source on a serial queue; `data` is how many deliveries it merged.
// On Linux libdispatch reads signals from a signalfd, which only sees a signal that no thread takes first: the
// documented pattern is to block the signals in every thread (here: before any thread exists) and let the
// source pick them up.
case "dispatch":
    var blocked = sigset_t()
    sigemptyset(&blocked)
    sigaddset(&blocked, SIGUSR1)
    sigaddset(&blocked, rt.rawValue)
    pthread_sigmask(SIG_BLOCK, &blocked, nil)
    let queue = DispatchQueue(label: "bench.signals")
    var sources: [DispatchSourceSignal] = []
    for (slot, number) in [(CInt(0), SIGUSR1), (CInt(1), rt.rawValue)] {
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        // @Sendable: a closure written in top-level code is otherwise main-actor isolated, and Swift 6 checks
        // at run time that it runs on the main queue.
        nonisolated(unsafe) let unsafeSource = source
        source.setEventHandler { @Sendable in cbench_seen_many(shm, slot, UInt64(unsafeSource.data)) }
        source.resume()
        sources.append(source)
    }
    // Registration is asynchronous: probe with one SIGUSR1 to ourselves until the source has seen one, then
    // clear the count (the driver has sent nothing yet).
    let deadline = cbench_now_ns() + 10_000_000_000
    kill(getpid(), SIGUSR1)
    while cbench_received(shm, 0) == 0 {
        if cbench_now_ns() > deadline { fail("the signal source never saw the probe") }
        usleep(1000)
    }
    queue.sync { cbench_store(&shm.pointee.slot.0.received, 0) }
    cbench_set_ready(shm)
    withExtendedLifetime(sources) { park() }

// swift-service-lifecycle's UnixSignalsSequence (standard signals only: it has no real-time signals).
case "lifecycle":
    let ready = DispatchSemaphore(value: 0)
    Task.detached {
        let signals = await UnixSignalsSequence(trapping: .sigusr1)
        ready.signal()
        for await _ in signals { cbench_seen(shm, 0, 0) }
    }
    ready.wait()
    cbench_set_ready(shm)
    park()

// The cost of one poll check: a loop of blackHole(poller.hasNew) against the same loop of blackHole(false),
// and the plain loops (no call) as an upper bound. Results in ns per iteration, best of 5.
case "poll-cost":
    start(watching: [.sigusr1])
    cbench_set_ready(shm)
    let poller = engine.poller(for: .sigusr1)
    var mutablePoller = poller
    let n = count > 0 ? count : 200_000_000
    func best(_ body: () -> Void) -> Double {
        var bestNs = Double.infinity
        for _ in 0..<5 {
            let t0 = cbench_now_ns()
            body()
            bestNs = min(bestNs, Double(cbench_now_ns() - t0) / Double(n))
        }
        return bestNs
    }
    let falseFlag = arguments.count > 100  // false, but not a constant the optimizer can see through
    let withHasNew = best { for _ in 0..<n { blackHole(poller.hasNew) } }
    let withFalse = best { for _ in 0..<n { blackHole(falseFlag) } }
    let zero = UInt64(arguments.count > 100 ? 1 : 0)  // 0, opaque to the optimizer
    let withPoll = best { for _ in 0..<n { blackHole(mutablePoller.poll()) } }
    let withZero = best { for _ in 0..<n { blackHole(zero) } }
    var hits = 0
    let plainHasNew = best { for _ in 0..<n { if poller.hasNew { hits &+= 1 } } }
    var sum: UInt64 = 0
    let plainPoll = best { for _ in 0..<n { sum &+= mutablePoller.poll() } }
    blackHole(hits)
    blackHole(sum)
    let results = [withHasNew - withFalse, withPoll - withZero, plainHasNew, plainPoll, withFalse]
    cbench_publish_results(shm, results, CInt(results.count))
    exit(0)

// Allocations on the recording path: manual delivery (records stay in the C ring, no Swift runs per signal);
// mallocs of the whole process while the driver floods N real-time signals.
case "alloc-record":
    guard let mallocs = mallocCounter else { fail("needs LD_PRELOAD=libBenchMallocCounter.so") }
    start(.init(ringCapacity: 65536, delivery: .manual), watching: [rt])
    let base = engine.counts(for: rt).delivered
    let before = mallocs()
    cbench_set_ready(shm)
    let deadline = cbench_now_ns() + 60_000_000_000
    while engine.counts(for: rt).delivered - base < UInt64(count), cbench_now_ns() < deadline { usleep(1000) }
    let after = mallocs()
    let counts = engine.counts(for: rt)
    let results = [Double(after - before), Double(counts.delivered - base), Double(counts.droppedRecords)]
    cbench_publish_results(shm, results, CInt(results.count))
    exit(0)

// Allocations per awaited event (automatic delivery, `for await`), or per blocking next(), in steady state:
// counted from the 100th to the Nth event of a paced ping-pong.
case "alloc-await", "alloc-await-exec", "alloc-blocking":
    guard let mallocs = mallocCounter else { fail("needs LD_PRELOAD=libBenchMallocCounter.so") }
    let warmup = 100
    guard count > warmup else { fail("N must exceed \(warmup)") }
    start(watching: [.sigusr1])
    nonisolated(unsafe) var before: UInt64 = 0
    nonisolated(unsafe) var received = 0
    // BENCH_TRACE_ALLOCATIONS=1: keep the call stacks of the allocations of events warmup+1...warmup+3 and
    // print them to stderr at the end (symbolise with the binary: addr2line or gdb).
    let trace = getenv("BENCH_TRACE_ALLOCATIONS") != nil
    typealias Toggle = @convention(c) (CInt) -> Void
    let traceToggle = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cmalloc_counter_trace").map { unsafeBitCast($0, to: Toggle.self) }
    let dump = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cmalloc_counter_dump").map { unsafeBitCast($0, to: Toggle.self) }
    let onEvent: @Sendable (SignalEvent) -> Bool = { event in
        received += 1
        if trace, received == warmup { traceToggle?(1) }
        if trace, received == warmup + 3 {
            traceToggle?(0)
            dump?(2)
        }
        if received == warmup { before = mallocs() }
        if received == count {
            let after = mallocs()
            let results = [Double(after - before) / Double(count - warmup)]
            cbench_publish_results(shm, results, CInt(results.count))
        }
        seen(event)
        return received < count
    }
    if mode == "alloc-await" {
        let events = engine.events(for: [.sigusr1], bufferingLimit: 1 << 12)
        Task.detached {
            for await event in events { if !onEvent(event) { break } }
        }
        cbench_set_ready(shm)
        park()
    } else if mode == "alloc-await-exec" {
        let events = engine.events(for: [.sigusr1], bufferingLimit: 1 << 12)
        Task.detached {
            await withTaskExecutorPreference(engine.executor) {
                for await event in events { if !onEvent(event) { break } }
            }
        }
        cbench_set_ready(shm)
        park()
    } else {
        let subscription = engine.subscribe(to: [.sigusr1], bufferingLimit: 1 << 12)
        cbench_set_ready(shm)
        while true {
            if let event = subscription.next(timeout: .seconds(10)), !onEvent(event) { park() }
        }
    }

default:
    fail("unknown mode")
}
