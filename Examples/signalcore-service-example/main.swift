// signalcore-service-example: a small service run by swift-service-lifecycle, with SignalCore in charge of the
// signals.
//
//   SIGHUP             reload (bursts during a reload fold into one more reload)
//   SIGTERM, SIGINT    graceful shutdown; the second one cancels
//   SIGRTMIN+1         graceful shutdown too (ServiceGroup's own signal handling cannot offer real-time signals)
//
// Standard output gets one line per event ("tick", "reloaded", "shutdown", "bye"), standard error the logs.
#if ServiceLifecycleIntegration && TelemetryIntegration
import Logging
import ServiceLifecycle
import SignalCore
import SignalCoreServiceLifecycle
import SignalCoreTelemetry
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: signalcore-service-example [--help]

    Runs a ticking service until a signal stops it. Takes no other arguments.
      SIGHUP            reload; signals during a reload fold into one more reload
      SIGTERM, SIGINT   graceful shutdown; a second one cancels at once
      SIGRTMIN+1        graceful shutdown (a real-time signal)
    Prints "tick", "reloaded", "shutdown" and "bye" lines on standard output; logs go to standard error.
    """

let arguments = CommandLine.arguments.dropFirst()
/// One line to standard error (write(2): no shared FILE state).
func complain(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

if arguments.contains("--help") || arguments.contains("-h") {
    print(usage)
    exit(0)
}
if let unknown = arguments.first {
    complain("error: unknown argument '\(unknown)' (signalcore-service-example takes none; see --help)")
    exit(64)
}

func emit(_ line: String) {
    print(line)
    fflush(nil)
}

/// The "configuration" a reload refreshes: here just a generation number.
final class Settings: Sendable {
    let generation = Atomic<Int>(0)
}

/// The application's work: ticks until graceful shutdown, then finishes its current tick.
struct Ticker: Service {
    let settings: Settings

    func run() async throws {
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            tick += 1
            emit("tick \(tick) generation=\(settings.generation.load(ordering: .relaxed))")
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(500)) }
        }
        emit("ticker stopped after=\(tick)")
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

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "signalcore-service-example")
let settings = Settings()

let reloader = SignalReloadService(signals: [.sighup], logger: logger) { request in
    let generation = settings.generation.add(1, ordering: .relaxed).newValue
    emit("reloaded generation=\(generation) coalesced=\(request.coalesced) from_pid=\(request.event.senderPID)")
}
let telemetry = SignalTelemetry(configuration: .init(pollInterval: .seconds(5)), logger: logger)
let group = ServiceGroup(
    services: [TelemetryService(telemetry: telemetry), reloader, Ticker(settings: settings)],
    logger: logger)
let shutdown = SignalShutdownService(
    group: group,
    configuration: .init(gracefulShutdownSignals: [.sigterm, .sigint, .realtime(1)]),
    logger: logger
) { trigger in
    emit("shutdown signal=\(trigger.event.signal) from_pid=\(trigger.event.senderPID) action=\(trigger.action.rawValue)")
}

do {
    try await shutdown.run()
    emit("bye reloads=\(reloader.statistics.reloadsCompleted)")
} catch {
    complain("error: \(error)")
    exit(1)
}
#else
#if canImport(Glibc)
import Glibc
#endif

print("signalcore-service-example needs the integration traits: swift run --enable-all-traits signalcore-service-example")
exit(1)
#endif
