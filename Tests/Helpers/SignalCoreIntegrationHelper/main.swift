// Scenarios of the ServiceLifecycle and telemetry integrations, each run in its own process by
// SignalCoreIntegrationTests (signal state is process-global).
// Usage: SignalCoreIntegrationHelper <scenario> [arguments]
#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting

#if canImport(Glibc)
import Glibc
#endif

switch argument(0) {
case "shutdown": shutdownScenario(argument(1) ?? "graceful")
case "shutdown-nested": nestedShutdownScenario()
case "shutdown-manual": manualDeliveryScenario()
case "reload": reloadScenario()
case "reload-shutdown": reloadDuringShutdownScenario()
case "telemetry-burst": telemetryBurstScenario(count: Int(argument(1) ?? "") ?? 2000, mode: argument(2) ?? "with")
case "telemetry": telemetryScenario()
default: fail("usage: SignalCoreIntegrationHelper shutdown graceful|escalate|count|realtime | shutdown-nested | shutdown-manual | reload | reload-shutdown | telemetry | telemetry-burst N with|counts|without")
}
exit(0)
#else
#if canImport(Glibc)
import Glibc
#endif

print("SignalCoreIntegrationHelper needs the integration traits: build with --enable-all-traits")
exit(1)
#endif
