// Safety scenarios, each run in its own process by SignalCoreSafetyTests and scripts/verify.
// Usage: SignalCoreVerifyHelper <scenario> [count arguments]
#if canImport(Glibc)
import ChildProcessTesting
import Glibc
#endif

guard let scenario = argument(0) else { fail("usage: SignalCoreVerifyHelper <scenario> [arguments]") }

switch scenario {
case "fork": scenarioFork()
case "spawn": scenarioSpawn()
case "thread-storm": scenarioThreadStorm(maxThreads: argument(1, default: 300))
case "stop-flood": scenarioStopFlood(minimum: argument(1, default: 200_000), rounds: argument(2, default: 20))
case "watch-churn": scenarioWatchChurn(iterations: argument(1, default: 20_000), pauseMicroseconds: argument(2, default: 0))
case "cycles": scenarioCycles(cycles: argument(1, default: 10_000))
case "ring-full": scenarioRingFull(processSignals: argument(1, default: 20_000), threadSignals: argument(2, default: 2_000))
case "queue-full": scenarioQueueFull(limit: argument(1, default: 64))
case "subscriber-stress": scenarioSubscriberStress(count: argument(1, default: 20_000))
default: fail("unknown scenario \(scenario)")
}
say("DONE")
exit(0)
