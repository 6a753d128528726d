// The Swift benchmark receivers in an ordinary synchronous program: SignalCore's paths and the Swift peers,
// one per process. BenchAsyncReceiver runs the same SignalCore paths inside an async @main program.
//
//   BenchReceiver MODE SHM [N]
//
// Latency/flood modes watch SIGUSR1 (slot 0) and SIGRTMIN+1 (slot 1) and call cbench_seen() the moment user code
// sees a delivery; the driver SIGKILLs them when done. Cost modes measure once and publish results in the page.
// SignalCore's own calls are all in Sources/SignalCoreReceivers.
import CBench
import Dispatch
import SignalCoreReceivers
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

func fail(_ message: String) -> Never {
    printError("BenchReceiver \(mode): \(message)")
    exit(1)
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

/// Runs a SignalCore receiver: an async loop in a detached task while the main thread sleeps, a blocking loop
/// on the main thread.
func run(_ path: SignalCorePath, realtime: Bool = true, seen: @escaping SeenHandler) -> Never {
    let loop: SignalCoreLoop
    do {
        loop = try SignalCoreReceivers.prepare(path, realtime: realtime, seen: seen) { slot, count in
            cbench_seen_many(shm, slot, count)
        }
    } catch {
        fail("\(error)")
    }
    switch loop {
    case .async(let body):
        Task.detached { await body() }
        cbench_set_ready(shm)
        park()
    case .blocking(let body):
        cbench_set_ready(shm)
        body()
        park()
    }
}

switch mode {
// SignalCore's receivers (Sources/SignalCoreReceivers): sc-await, sc-await-exec, sc-blocking, sc-poll.
case _ where SignalCorePath(rawValue: mode) != nil:
    run(SignalCorePath(rawValue: mode)!) { slot, value in
        cbench_seen(shm, slot, value)
        return true
    }

// libdispatch's signal source on a serial queue; `data` is how many deliveries it merged.
// On Linux libdispatch reads signals from a signalfd, which only sees a signal that no thread takes first: the
// documented pattern is to block the signals in every thread (here: before any thread exists) and let the
// source pick them up.
case "dispatch":
    var blocked = sigset_t()
    sigemptyset(&blocked)
    sigaddset(&blocked, SIGUSR1)
    sigaddset(&blocked, cbench_rt_signal())
    pthread_sigmask(SIG_BLOCK, &blocked, nil)
    let queue = DispatchQueue(label: "bench.signals")
    var sources: [DispatchSourceSignal] = []
    for (slot, number) in [(CInt(0), SIGUSR1), (CInt(1), cbench_rt_signal())] {
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

// The cost of one poll check (best of 5; see SignalCoreReceivers.pollCost).
case "poll-cost":
    cbench_set_ready(shm)
    do {
        let results = try SignalCoreReceivers.pollCost(
            iterations: count > 0 ? count : 200_000_000,
            opaqueFalse: arguments.count > 100, opaqueZero: UInt64(arguments.count > 100 ? 1 : 0))
        cbench_publish_results(shm, results, CInt(results.count))
    } catch {
        fail("\(error)")
    }
    exit(0)

// Allocations on the recording path: manual delivery (records stay in the C ring, no Swift runs per signal);
// mallocs of the whole process while the driver floods N real-time signals.
case "alloc-record":
    guard let mallocs = mallocCounter else { fail("needs LD_PRELOAD=libBenchMallocCounter.so") }
    do {
        let results = try SignalCoreReceivers.recordingAllocations(count: count, mallocs: { mallocs() }) {
            cbench_set_ready(shm)
        }
        cbench_publish_results(shm, results, CInt(results.count))
    } catch {
        fail("\(error)")
    }
    exit(0)

// Allocations per event of a SignalCore receiver (sc-await, sc-await-exec, sc-blocking) in steady state:
// counted from the 100th to the Nth event of a paced ping-pong.
case _ where mode.hasPrefix("alloc-") && SignalCorePath(rawValue: String(mode.dropFirst("alloc-".count))) != nil:
    guard let mallocs = mallocCounter else { fail("needs LD_PRELOAD=libBenchMallocCounter.so") }
    let warmup = 100
    guard count > warmup else { fail("N must exceed \(warmup)") }
    nonisolated(unsafe) var before: UInt64 = 0
    nonisolated(unsafe) var received = 0
    // BENCH_TRACE_ALLOCATIONS=1: keep the call stacks of the allocations of events warmup+1...warmup+3 and
    // print them to stderr at the end (symbolise with the binary: addr2line or gdb).
    let trace = getenv("BENCH_TRACE_ALLOCATIONS") != nil
    typealias Toggle = @convention(c) (CInt) -> Void
    let traceToggle = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cmalloc_counter_trace").map { unsafeBitCast($0, to: Toggle.self) }
    let dump = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cmalloc_counter_dump").map { unsafeBitCast($0, to: Toggle.self) }
    run(SignalCorePath(rawValue: String(mode.dropFirst("alloc-".count)))!, realtime: false) { slot, value in
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
        cbench_seen(shm, slot, value)
        return received < count
    }

default:
    fail("unknown mode")
}
