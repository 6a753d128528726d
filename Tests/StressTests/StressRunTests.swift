// Needs the tool's command line (swift-argument-parser, the CommandLineTools trait, on by default).
#if CommandLineTools
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

    /// Runs the stress tool built beside this test bundle; kills it after `timeout` seconds.
    func stress(_ arguments: [String], timeout: Double = 120) throws -> Outcome {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let tool = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)]) + "/signalcore-stress"
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([tool] + arguments + ["--timeout", "\(Int(timeout - 10))"]).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let err = posix_spawn(&pid, tool, &actions, &attributes, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(fds[1])
        defer { close(fds[0]) }
        try #require(err == 0, "posix_spawn \(tool): \(err)")

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let deadline = Double(now.tv_sec) + timeout
        while true {
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec) > deadline {
                kill(pid, SIGKILL)
                break
            }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 500) <= 0 { continue }
            let r = read(fds[0], &chunk, chunk.count)
            if r <= 0 { break }
            output += chunk[0..<r]
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        var json: [String: String] = [:]
        if let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }) {
            // Flat scan of "key":value pairs: enough for the tool's one-line summary.
            for part in line.dropFirst().dropLast().split(separator: ",") {
                let kv = part.split(separator: ":", maxSplits: 1)
                if kv.count == 2 { json[kv[0].replacingQuotes()] = kv[1].replacingQuotes() }
            }
        }
        return Outcome(status: (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: text, json: json)
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
                              "--json"], timeout: 35)
        // This run found the borrow stall fixed in main 825487f (a borrower kept re-poking for 5 s while it was
        // the only thread that could drain a full queue): before the fix it met its timeout.
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
#endif
