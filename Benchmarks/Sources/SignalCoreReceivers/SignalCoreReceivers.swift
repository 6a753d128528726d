// Every SignalCore call the benchmark makes, in one file: the four receivers (the same code serves the
// synchronous BenchReceiver and the async @main BenchAsyncReceiver) and the cost measurements.
//
// Each receiver uses the library's defaults apart from the one choice it exists to show: the engine's
// executor, a blocking wait, or polling. No subscription is sized for the flood: a flood meets the default
// buffer, as a user's program would.
import CBench
import SignalCore

#if canImport(Glibc)
import Glibc
#endif

/// One SignalCore receiver, named as the driver's tables name it.
public enum SignalCorePath: String, CaseIterable, Sendable {
    /// `for await` over `events(for:)` in an ordinary task on the global executor.
    case forAwait = "sc-await"
    /// The same loop under `withTaskExecutorPreference(engine.executor)`: the task resumes on the wait thread.
    case forAwaitOnEngineExecutor = "sc-await-exec"
    /// `subscription.next(timeout:)` in a loop on a thread of its own.
    case blocking = "sc-blocking"
    /// A thread spinning on `poller.hasNew` (counts, no records).
    case poll = "sc-poll"
}

/// A receiver's loop, ready to run: subscribed already, so nothing sent from now on is missed.
public enum SignalCoreLoop: Sendable {
    /// Runs in a task (never returns unless `seen` says stop).
    case async(@Sendable () async -> Void)
    /// Occupies the calling thread (never returns unless `seen` says stop).
    case blocking(@Sendable () -> Void)
}

/// What user code does with a delivery: its slot in the shared page (0 = SIGUSR1, 1 = SIGRTMIN+1) and its
/// sigqueue value (0 when it was not queued). Returns false to end the loop.
public typealias SeenHandler = @Sendable (_ slot: CInt, _ value: UInt64) -> Bool

public enum SignalCoreReceivers {
    private static let engine = SignalEngine.shared
    /// The real-time signal of the floods (slot 1): SIGRTMIN+1, which every peer can watch (CBench.h says why).
    private static let realtimeSignal = Signal(cbench_rt_signal())

    /// Subscribes as `path` does with default arguments (which starts the engine with its default
    /// configuration), and returns the loop that hands each delivery to `seen`. Watches SIGUSR1 and, unless `realtime` is false,
    /// SIGRTMIN+1. The poll loop reports counts to `seenMany` instead (it sees no records).
    public static func prepare(
        _ path: SignalCorePath, realtime: Bool = true,
        seen: @escaping SeenHandler, seenMany: @escaping @Sendable (_ slot: CInt, _ count: UInt64) -> Void
    ) throws -> SignalCoreLoop {
        let signals: SignalSet = realtime ? [.sigusr1, realtimeSignal] : [.sigusr1]
        switch path {
        case .forAwait:
            let events = try engine.events(for: signals)
            return .async {
                for await event in events {
                    if !seen(slot(event), value(event)) { break }
                }
            }
        case .forAwaitOnEngineExecutor:
            let events = try engine.events(for: signals)
            return .async {
                await withTaskExecutorPreference(engine.executor) {
                    for await event in events {
                        if !seen(slot(event), value(event)) { break }
                    }
                }
            }
        case .blocking:
            let subscription = try engine.subscription(for: signals)
            return .blocking {
                while true {
                    if let event = subscription.next(timeout: .seconds(10)), !seen(slot(event), value(event)) { return }
                }
            }
        case .poll:
            let usr1 = try engine.poller(for: .sigusr1)
            let rt = try engine.poller(for: realtimeSignal)
            return .blocking {
                var usr1 = usr1
                var rt = rt
                while true {
                    if usr1.hasNew { seenMany(0, usr1.poll()) }
                    if rt.hasNew { seenMany(1, rt.poll()) }
                }
            }
        }
    }

    @inline(__always)
    private static func slot(_ event: SignalEvent) -> CInt { event.signal == .sigusr1 ? 0 : 1 }

    @inline(__always)
    private static func value(_ event: SignalEvent) -> UInt64 {
        event.code == .queue ? UInt64(UInt32(bitPattern: event.value)) : 0
    }

    // MARK: Costs

    /// The cost of one poll check, best of 5 runs of `iterations`: [hasNew marginal, poll() marginal, plain
    /// `if hasNew` loop per iteration, plain `sum += poll()` loop per iteration, the blackHole call itself],
    /// in ns. Marginal = a loop of blackHole(x) minus the same loop of blackHole(a constant the optimizer
    /// cannot see through).
    public static func pollCost(iterations n: Int, opaqueFalse: Bool, opaqueZero: UInt64) throws -> [Double] {
        let poller = try engine.poller(for: .sigusr1)
        var mutablePoller = poller
        func best(_ body: () -> Void) -> Double {
            var bestNs = Double.infinity
            for _ in 0..<5 {
                let t0 = cbench_now_ns()
                body()
                bestNs = min(bestNs, Double(cbench_now_ns() - t0) / Double(n))
            }
            return bestNs
        }
        let withHasNew = best { for _ in 0..<n { blackHole(poller.hasNew) } }
        let withFalse = best { for _ in 0..<n { blackHole(opaqueFalse) } }
        let withPoll = best { for _ in 0..<n { blackHole(mutablePoller.poll()) } }
        let withZero = best { for _ in 0..<n { blackHole(opaqueZero) } }
        var hits = 0
        let plainHasNew = best { for _ in 0..<n { if poller.hasNew { hits &+= 1 } } }
        var sum: UInt64 = 0
        let plainPoll = best { for _ in 0..<n { sum &+= mutablePoller.poll() } }
        blackHole(UInt64(hits) &+ sum)
        return [withHasNew - withFalse, withPoll - withZero, plainHasNew, plainPoll, withFalse]
    }

    /// Allocations on the recording path: the engine with its defaults watches SIGRTMIN+1 and nothing
    /// subscribes, so each delivery is recorded and pumped to nobody. Calls `ready`, waits (at most 60 s) until
    /// `count` deliveries were counted, and returns [mallocs of the whole process meanwhile, deliveries, dropped
    /// records].
    public static func recordingAllocations(count: Int, mallocs: () -> UInt64, ready: () -> Void) throws -> [Double] {
        let rt = realtimeSignal
        try engine.watch([rt])
        let base = engine.counts(for: rt).delivered
        let before = mallocs()
        ready()
        let deadline = cbench_now_ns() + 60_000_000_000
        while engine.counts(for: rt).delivered - base < UInt64(count), cbench_now_ns() < deadline { usleep(1000) }
        let after = mallocs()
        let counts = engine.counts(for: rt)
        return [Double(after - before), Double(counts.delivered - base), Double(counts.droppedRecords)]
    }

    @inline(never) static func blackHole(_ value: Bool) {}
    @inline(never) static func blackHole(_ value: UInt64) {}
}
