// signalcore-service-example: a small service run by swift-service-lifecycle, with SignalCore in charge of the
// signals.
//
//   SIGHUP             reload (bursts during a reload fold into one more reload)
//   SIGTERM, SIGINT    graceful shutdown; the second one cancels
//   SIGRTMIN+1         graceful shutdown too (ServiceGroup's own signal handling cannot offer real-time signals)
//
// After a shutdown signal the process ends the way --exit-mode says: by default it dies by the signal (a shell
// shows 143 for SIGTERM); `code` exits with 128 + n; `return` lets main go on, print "bye" and exit 0.
// Standard output gets one line per event ("tick", "reloaded", "shutdown", "ticker stopped", "bye"), standard
// error the logs.
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
    usage: signalcore-service-example [--exit-mode reraise|code|return] [--help]

    Runs a ticking service until a signal stops it.
      SIGHUP            reload; signals during a reload fold into one more reload
      SIGTERM, SIGINT   graceful shutdown; a second one cancels at once
      SIGRTMIN+1        graceful shutdown (a real-time signal)
    --exit-mode         how the process ends after a shutdown signal: reraise (default: it dies by the
                        signal), code (exit status 128 + n), return (prints "bye" and exits 0)
    Prints "tick", "reloaded", "shutdown", "ticker stopped" and "bye" lines on standard output; logs go to
    standard error.
    """

var arguments = Array(CommandLine.arguments.dropFirst())
/// One line to standard error (write(2): no shared FILE state).
func complain(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

if arguments.contains("--help") || arguments.contains("-h") {
    print(usage)
    exit(0)
}
var exitMode = SignalShutdownService.ExitMode.reraise
if arguments.first == "--exit-mode" {
    guard arguments.count >= 2, let mode = SignalShutdownService.ExitMode(rawValue: arguments[1]) else {
        complain("error: --exit-mode takes reraise, code or return")
        exit(64)
    }
    exitMode = mode
    arguments.removeFirst(2)
}
if let unknown = arguments.first {
    complain("error: unknown argument '\(unknown)' (see --help)")
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
let telemetry = SignalTelemetry(logger: logger)
// A group shuts its services down in reverse order: the reloader first, then the ticker, the telemetry last.
let group = ServiceGroup(
    services: [TelemetryService(telemetry: telemetry), Ticker(settings: settings), reloader],
    logger: logger)
let shutdown = SignalShutdownService(
    group: group,
    configuration: .init(gracefulShutdownSignals: [.sigterm, .sigint, .realtime(1)], exitMode: exitMode),
    logger: logger
) { trigger in
    emit("shutdown signal=\(trigger.event.signal) from_pid=\(trigger.event.senderPID) action=\(trigger.action.rawValue)")
}

do {
    try await shutdown.run()  // after a shutdown signal, returns only with --exit-mode return
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
