import ChildProcessTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real stress runs: `signalcore-stress` in child processes (target and senders are its own children). Each
/// run is bounded by the tool's --timeout and by the wait here.
@Suite(.serialized) struct StressRunTests {
    struct Outcome {
        var status: CInt
        var output: String
        var json: [String: String]
    }

    /// Runs the stress tool built beside this test bundle; kills it after `timeout` seconds (ChildProcessTesting
    /// spawns it with an empty signal mask and default dispositions and reads its output).
    func stress(_ arguments: [String], timeout: Double = 120, signalQueue: SignalQueueAccess = .shared) throws -> Outcome {
        let run = try SpawnedProcess("signalcore-stress", arguments + ["--timeout", "\(Int(timeout - 10))"],
                                     signalQueue: signalQueue)
        let exit = try run.finish(timeout: .seconds(timeout))
        let text = run.lines.map { $0 + "\n" }.joined()
        var json: [String: String] = [:]
        if let line = run.lines.last(where: { $0.hasPrefix("{") }) {
            // Flat scan of "key":value pairs: enough for the tool's one-line summary.
            for part in line.dropFirst().dropLast().split(separator: ",") {
                let kv = part.split(separator: ":", maxSplits: 1)
                if kv.count == 2 { json[kv[0].replacingQuotes()] = kv[1].replacingQuotes() }
            }
        }
        let status: CInt = switch exit {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        }
        return Outcome(status: status, output: text, json: json)
    }

    @Test func quickRunHasNoViolations() throws {
        let run = try stress(["--count", "20000", "--senders", "2", "--churn", "1", "--json"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.json["ok"] == "true")
        #expect(run.json["violations"] == "0")
        #expect(run.json["realtime_expected"] == run.json["realtime_received"])
        #expect(Int(run.json["realtime_expected"] ?? "") ?? 0 >= 20000)
        #expect(run.json["handshakes"] == run.json["handshakes_verified"])
        #expect(Int(run.json["handshakes"] ?? "") ?? 0 == 2 * (3 + 2))  // 2 senders × (2 process, wait thread, 2 workers)
        #expect(run.output.contains("RESULT: PASS"))
    }

    @Test func unpacedRunWithoutWindowMeetsTheKernelLimitAndStillAccountsForEverything() throws {
        // A small kernel queue for the target (set after SignalCore started): the senders meet EAGAIN and retry.
        // Not smaller: the kernel counts the pending signals of the whole user, other test processes included.
        let run = try stress(["--count", "20000", "--senders", "3", "--window", "0", "--sigpending-limit", "1000", "--churn", "0",
                              "--json"], timeout: 90, signalQueue: .exclusive)
        // A borrower of the wait role must not keep re-poking the wait thread while it is the only thread that
        // could drain a full queue: this run would then crawl into its timeout.
        #expect(run.status == 0, "\(run.output)")
        #expect(run.json["violations"] == "0")
        #expect(Int(run.json["retries"] ?? "") ?? 0 > 0, "the senders never met EAGAIN: \(run.output)")
    }

    @Test func lossyTargetIsDetected() throws {
        let run = try stress(["--count", "10000", "--senders", "2", "--churn", "0", "--inject-lose-every", "500", "--json"])
        #expect(run.status == 1, "\(run.output)")
        #expect(run.json["ok"] == "false")
        #expect(run.output.contains("RESULT: FAIL"))
        #expect(run.output.contains("VIOLATION real-time signal lost"))
        #expect(run.output.contains("VIOLATION counter ≠ records + dropped"))
        #expect(Int(run.json["violations"] ?? "") ?? 0 >= 20)
    }
}

extension Substring {
    func replacingQuotes() -> String { String(filter { $0 != "\"" && $0 != "}" && $0 != "{" }) }
}
