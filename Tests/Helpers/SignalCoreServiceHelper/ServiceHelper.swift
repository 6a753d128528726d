// Services in the shape the README shows: an async `@main` program, a ServiceGroup run by a
// SignalShutdownService, default arguments everywhere. Each scenario runs in its own process; the signals come
// from other processes (the test, or this program's `send` mode).
//
// Usage: SignalCoreServiceHelper flood N          a Flood service takes N values of SIGRTMIN+1
//        SignalCoreServiceHelper drain-hup        a server that drains until a SIGHUP comes, and a reloader
//        SignalCoreServiceHelper double-term      a server that ignores graceful shutdown until cancelled
//        SignalCoreServiceHelper idle             a server, a reloader and telemetry, all waiting
//        SignalCoreServiceHelper send PID SIGNO N queues values 1...N of SIGNO to PID, retrying on EAGAIN
#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Logging
import ServiceLifecycle
import SignalCore
import SignalCoreServiceLifecycle
import SignalCoreTelemetry

#if canImport(Glibc)
import Glibc
#endif

@main
struct ServiceHelper {
    static func main() async throws {
        switch argument(0) {
        case "send":
            send(to: pid_t(argument(1, default: 0)), signal: CInt(argument(2, default: 0)), count: argument(3, default: 0))
            return
        case "flood", "drain-hup", "double-term", "idle":
            break
        default:
            fail("usage: SignalCoreServiceHelper flood N | drain-hup | double-term | idle | send PID SIGNO N")
        }

        // From here on, the program as the README writes it.
        let logger = Logger(label: "service-helper")
        let services: [any Service]
        switch argument(0) {
        case "flood":
            services = [Flood(expected: argument(1, default: 100_000))]
        case "drain-hup":
            let reloader = SignalReloadService(logger: logger) { request in
                say("reloaded number=\(request.number) coalesced=\(request.coalesced)")
            }
            services = [DrainUntilHangup(), reloader]
        case "double-term":
            services = [Stubborn()]
        default:  // idle
            let reloader = SignalReloadService(logger: logger) { _ in }
            services = [Waiting(), reloader, TelemetryService(telemetry: SignalTelemetry(logger: logger))]
        }
        let group = ServiceGroup(services: services, logger: logger)
        let shutdown = SignalShutdownService(group: group, logger: logger)
        try await shutdown.run()
        say("run returned")
    }
}

/// Takes `expected` values of SIGRTMIN+1 with `for await`, checks that each value 1...expected came exactly once
/// and in order, reports, then waits for the graceful shutdown. On a graceful shutdown before the last value it
/// reports what it had.
struct Flood: Service {
    let expected: Int

    func run() async throws {
        let engine = SignalEngine.shared
        let events = try engine.events(for: [.realtime(1)])
        say("READY pid=\(getpid())")
        var seen = [Bool](repeating: false, count: expected + 1)
        var received = 0
        var duplicates = 0
        var outOfRange = 0
        var backwards = 0
        var previous: CInt = 0
        var firstOutOfOrder: (index: Int, value: CInt, previous: CInt)? = nil
        var viaHandler = 0
        var senders = Set<CInt>()
        let clock = ContinuousClock()
        var first: ContinuousClock.Instant? = nil
        for await event in events.cancelOnGracefulShutdown() {
            if first == nil { first = clock.now }
            received += 1
            let value = event.value
            if value >= 1, Int(value) <= expected {
                if seen[Int(value)] { duplicates += 1 } else { seen[Int(value)] = true }
            } else {
                outOfRange += 1
            }
            if value != previous + 1 {
                if firstOutOfOrder == nil { firstOutOfOrder = (received, value, previous) }
                if value <= previous { backwards += 1 }
            }
            previous = value
            if event.route == .handler { viaHandler += 1 }
            senders.insert(event.senderPID)
            if received == expected { break }
        }
        let elapsed = first.map { clock.now - $0 } ?? .zero
        let unique = seen.dropFirst().filter { $0 }.count
        let order = firstOutOfOrder.map { "first_out_of_order_index=\($0.index) first_out_of_order_value=\($0.value) after_value=\($0.previous)" } ?? "first_out_of_order_index=none"
        say("flood expected=\(expected) received=\(received) unique=\(unique) missing=\(expected - unique) duplicates=\(duplicates) out_of_range=\(outOfRange) backwards=\(backwards) \(order) via_handler=\(viaHandler) senders=\(senders.count) elapsed_ms=\(milliseconds(elapsed)) delivered=\(engine.counts(for: .realtime(1)).delivered) dropped_events=\(events.droppedEvents)")
        say("mask_spread \(engine.lastMaskSpread)")
        for report in (try? engine.auditThreads()) ?? [] { say("thread \(report)") }
        try? await gracefulShutdown()
    }
}

/// A server whose graceful shutdown lasts until a SIGHUP arrives after it began (at most 30 s): the reload
/// service, listed after it, has stopped by then.
struct DrainUntilHangup: Service {
    func run() async throws {
        let engine = SignalEngine.shared
        say("server running=1 hup_watched=\(engine.watchedSignals.contains(.sighup) ? 1 : 0)")
        try? await gracefulShutdown()
        let before = engine.counts(for: .sighup).delivered
        say("draining hup_watched=\(engine.watchedSignals.contains(.sighup) ? 1 : 0) hup_delivered=\(before)")
        let deadline = ContinuousClock.now + .seconds(30)
        while engine.counts(for: .sighup).delivered == before, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
        say("drained hup_delivered=\(engine.counts(for: .sighup).delivered)")
    }
}

/// A server that takes no notice of graceful shutdown and works until cancelled (at most 60 s).
struct Stubborn: Service {
    func run() async throws {
        say("server running=1")
        try? await gracefulShutdown()
        say("draining")
        do {
            try await Task.sleep(for: .seconds(60))
            say("slept_out")
        } catch {
            say("cancelled")
            throw error
        }
    }
}

/// A server that waits for graceful shutdown and does nothing else. It says it runs once the other services
/// have subscribed (the shutdown service, the reload service and the telemetry observer: three subscriptions),
/// so that what follows is idle time.
struct Waiting: Service {
    func run() async throws {
        await waitUntil("three subscriptions") { SignalEngine.shared.subscriptionCount >= 3 }
        say("server running=1")
        try? await gracefulShutdown()
    }
}

/// SignalTelemetry as a service: observes until graceful shutdown.
struct TelemetryService: Service {
    let telemetry: SignalTelemetry

    func run() async throws {
        let observer = Task { await telemetry.run() }
        try? await gracefulShutdown()
        observer.cancel()
        await observer.value
    }
}

/// Queues the values 1...count of `signal` to `pid` from this one thread, retrying each on EAGAIN, for at most
/// 120 s; reports how many went and how often the kernel's queue was full.
func send(to pid: pid_t, signal: CInt, count: Int) {
    guard pid > 0, signal > 0, count > 0 else { fail("send PID SIGNO N") }
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .seconds(120)
    var value: CInt = 1
    var full = 0
    while value <= CInt(count) {
        var sv = sigval()
        sv.sival_int = value
        if sigqueue(pid, signal, sv) == 0 {
            value += 1
            continue
        }
        let err = errno
        guard err == EAGAIN else { fail("sigqueue value \(value): errno \(err)") }
        guard clock.now < deadline else { fail("sigqueue value \(value): EAGAIN until the deadline") }
        full += 1
        sched_yield()
    }
    say("sent count=\(count) eagain=\(full) elapsed_ms=\(milliseconds(clock.now - start))")
}
#else
#if canImport(Glibc)
import Glibc
#endif

@main
struct ServiceHelper {
    static func main() {
        print("SignalCoreServiceHelper needs the integration traits: build with --enable-all-traits")
        exit(1)
    }
}
#endif
