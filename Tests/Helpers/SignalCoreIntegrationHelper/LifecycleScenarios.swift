#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import Logging
import ServiceLifecycle
import SignalCore
import SignalCoreServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A logger that drops everything: the scenarios report through `say`, on standard output.
let quietLogger = Logger(label: "helper", factory: { _ in SwiftLogNoOpLogHandler() })

/// A service that either finishes on graceful shutdown or ignores it and runs until cancelled.
struct Worker: Service {
    let honoursGracefulShutdown: Bool

    func run() async throws {
        say("worker running=1")
        if honoursGracefulShutdown {
            try await gracefulShutdown()
            say("worker graceful_shutdown=1")
            return
        }
        await withGracefulShutdownHandler {
            do {
                try await Task.sleep(for: .seconds(60))
                say("worker slept_out=1")
            } catch {
                say("worker cancelled=1")
            }
        } onGracefulShutdown: {
            say("worker graceful_requested=1")
        }
    }
}

func describe(_ trigger: SignalShutdownService.Trigger) -> String {
    let e = trigger.event
    return "trigger ordinal=\(trigger.ordinal) signal=\(e.signal.rawValue) action=\(trigger.action.rawValue) pid=\(e.senderPID) code=\(e.code.rawValue) value=\(e.value)"
}

/// Runs `shutdown` until it returns; says READY once its signals are watched.
func runShutdownService(_ shutdown: SignalShutdownService, signals: SignalSet) {
    runAsync {
        let runner = Task { try await shutdown.run() }
        await waitUntil("shutdown signals watched") { engineWatches(signals) }
        say("READY pid=\(getpid())")
        do {
            try await runner.value
            say("run_ended error=none")
        } catch {
            say("run_ended error=\(type(of: error))")
        }
    }
    let stats = shutdown.statistics
    say("stats received=\(stats.signalsReceived) graceful=\(stats.gracefulShutdownTriggered ? 1 : 0) cancelled=\(stats.cancelled ? 1 : 0)")
    let still = SignalEngine.shared.watchedSignals.intersection(signals)
    say("after still_watched=\(still.count)")
}

/// `shutdown graceful|escalate|count|realtime`: a ServiceGroup with one Worker, run by a SignalShutdownService
/// whose exit mode returns, so that the scenario can report after run().
func shutdownScenario(_ mode: String) {
    let configuration: SignalShutdownService.Configuration
    let honours: Bool
    switch mode {
    case "graceful":
        configuration = .init(exitMode: .returnNormally)
        honours = true
    case "escalate":
        configuration = .init(exitMode: .returnNormally)
        honours = false
    case "count":
        configuration = .init(cancellationSignals: [.sigusr2], escalation: .none, exitMode: .returnNormally)
        honours = false
    case "realtime":
        configuration = .init(
            gracefulShutdownSignals: [.realtime(1)], cancellationSignals: [.realtime(2)], exitMode: .returnNormally)
        honours = false
    default:
        fail("unknown shutdown mode \(mode)")
    }
    let group = ServiceGroup(services: [Worker(honoursGracefulShutdown: honours)], logger: quietLogger)
    let shutdown = SignalShutdownService(group: group, configuration: configuration, logger: quietLogger) { trigger in
        say(describe(trigger))
    }
    runShutdownService(
        shutdown, signals: configuration.gracefulShutdownSignals.union(configuration.cancellationSignals))
    if mode == "graceful" {
        let disposition = must("disposition") { try SignalDispositions.current(.sigterm) }
        say("after sigterm_disposition=\(disposition)")
    }
}

/// `shutdown-nested`: the SignalShutdownService runs inside an outer ServiceGroup; the outer group's graceful
/// shutdown (triggered in code, no signal) reaches the inner group's worker.
func nestedShutdownScenario() {
    let inner = ServiceGroup(services: [Worker(honoursGracefulShutdown: true)], logger: quietLogger)
    let shutdown = SignalShutdownService(group: inner, logger: quietLogger) { trigger in say(describe(trigger)) }
    let outer = ServiceGroup(services: [shutdown], logger: quietLogger)
    runAsync {
        let runner = Task { try await outer.run() }
        await waitUntil("shutdown signals watched") { engineWatches([.sigterm, .sigint]) }
        say("READY pid=\(getpid())")
        await outer.triggerGracefulShutdown()
        do {
            try await runner.value
            say("run_ended error=none")
        } catch {
            say("run_ended error=\(type(of: error))")
        }
    }
    say("stats received=\(shutdown.statistics.signalsReceived)")
    say("after still_watched=\(SignalEngine.shared.watchedSignals.intersection([.sigterm, .sigint]).count)")
}

/// `shutdown-manual`: the application runs the engine with manual delivery; the service refuses to run (its
/// events would never come) and the group never starts.
func manualDeliveryScenario() {
    must("start") { try SignalEngine.shared.start(watching: [.sigusr1], configuration: .init(delivery: .manual)) }
    let group = ServiceGroup(services: [Worker(honoursGracefulShutdown: true)], logger: quietLogger)
    let shutdown = SignalShutdownService(group: group, logger: quietLogger)
    runAsync {
        do {
            try await shutdown.run()
            say("run_ended error=none")
        } catch let error as SignalError {
            say("run_ended signal_error=\(error)")
        } catch {
            say("run_ended error=\(error)")
        }
    }
    say("after term_watched=\(SignalEngine.shared.watchedSignals.contains(.sigterm) ? 1 : 0)")
    must("stop") { try SignalEngine.shared.stop() }
}

/// Counts handed from the reload closure to the scenario.
final class ReloadLog: Sendable {
    let requests = Mutex<[SignalReloadService.Request]>([])
}

struct ReloadFailure: Error {}

/// `reload`: the application watches SIGUSR1 itself; a group of one SignalReloadService (SIGHUP and SIGRTMIN+3)
/// runs under a SignalShutdownService. Reload 1 waits until six signals were seen, so that the five queued
/// during it fold into reload 2; reload 3 throws.
func reloadScenario() {
    let engine = SignalEngine.shared
    must("start") { try engine.start(watching: [.sigusr1]) }
    let log = ReloadLog()
    let box = Mutex<SignalReloadService?>(nil)
    let reloader = SignalReloadService(signals: [.sighup, .realtime(3)], logger: quietLogger) { request in
        let e = request.event
        say("reload number=\(request.number) coalesced=\(request.coalesced) signal=\(e.signal.rawValue) pid=\(e.senderPID) value=\(e.value)")
        log.requests.withLock { $0.append(request) }
        if request.number == 1 {
            let service = box.withLock { $0 }!
            await waitUntil("six reload signals") { service.statistics.signalsReceived >= 6 }
            say("reload1 saw_received=\(service.statistics.signalsReceived)")
        }
        if request.number == 3 { throw ReloadFailure() }
    }
    box.withLock { $0 = reloader }
    let group = ServiceGroup(services: [reloader], logger: quietLogger)
    let shutdown = SignalShutdownService(group: group, configuration: .init(exitMode: .returnNormally), logger: quietLogger) {
        trigger in say(describe(trigger))
    }
    runShutdownService(shutdown, signals: [.sigterm, .sigint, .sighup, .realtime(3)])
    let stats = reloader.statistics
    say("reload_stats received=\(stats.signalsReceived) completed=\(stats.reloadsCompleted) failed=\(stats.reloadsFailed)")
    let watched = engine.watchedSignals
    say("after usr1_watched=\(watched.contains(.sigusr1) ? 1 : 0) hup_watched=\(watched.contains(.sighup) ? 1 : 0) rt3_watched=\(watched.contains(.realtime(3)) ? 1 : 0)")
    must("stop") { try engine.stop() }
}
/// `reload-shutdown`: SIGTERM arrives while reload 1 runs. The reload finishes (it waits for a second SIGHUP the
/// parent sends after the SIGTERM), that second SIGHUP starts no reload, and the service returns.
func reloadDuringShutdownScenario() {
    let box = Mutex<SignalShutdownService?>(nil)
    let reloader = SignalReloadService(signals: [.sighup], logger: quietLogger) { request in
        say("reload number=\(request.number) started=1")
        let shutdown = box.withLock { $0 }!
        await waitUntil("graceful shutdown") { shutdown.statistics.gracefulShutdownTriggered }
        // The group passes the shutdown on to this service asynchronously; once this task sees it, the service's
        // shutdown handler has run (ServiceLifecycle runs handlers under the lock that sets the flag).
        await waitUntil("graceful shutdown of the reload service") { Task.isShuttingDownGracefully }
        say("reload number=\(request.number) saw_shutdown=1")
        await waitUntil("a second SIGHUP") { SignalEngine.shared.counts(for: .sighup).delivered >= 2 }
        say("reload number=\(request.number) finished=1")
    }
    let group = ServiceGroup(services: [reloader], logger: quietLogger)
    let shutdown = SignalShutdownService(group: group, configuration: .init(exitMode: .returnNormally), logger: quietLogger) {
        trigger in say(describe(trigger))
    }
    box.withLock { $0 = shutdown }
    runShutdownService(shutdown, signals: [.sigterm, .sigint, .sighup])
    let stats = reloader.statistics
    say("reload_stats received=\(stats.signalsReceived) completed=\(stats.reloadsCompleted) failed=\(stats.reloadsFailed)")
}
#endif
