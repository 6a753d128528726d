import ChildProcessTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End to end: the built `signal-worker` in its own process, signalled with the `kill` command, with
/// `timeout`, and with kill(2) from here. Synchronisation is on the lines it prints and on files, never on
/// sleeps.
@Suite struct WorkerTests {
    /// Parses the one-line JSON stats object.
    func stats(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any], "stats line is not a JSON object: \(line)")
    }

    func received(_ stats: [String: Any], _ signal: String) -> Int? {
        ((stats["signals"] as? [String: Any])?[signal] as? [String: Any])?["received"] as? Int
    }

    /// Common checks after a graceful stop: every job that started was done exactly once, processing/ is
    /// empty, and every job is either done or waiting.
    func checkGracefulStop(_ worker: SpawnedProcess, _ spool: TemporarySpool, total: Int) {
        let started = jobIDs(worker.errorLines, "job started")
        let done = jobIDs(worker.errorLines, "job done")
        #expect(!started.isEmpty, "no job started: \(worker.errorLines)")
        #expect(Set(started) == Set(done), "started \(started) but done \(done)")
        #expect(done.count == Set(done).count, "a job was done twice: \(done)")
        #expect(spool.files("processing").isEmpty, "left in processing/: \(spool.files("processing"))")
        #expect(spool.ids("done") == done.sorted())
        #expect(spool.ids("done").count + spool.ids("incoming").count == total)
        #expect(Set(spool.ids("done")).isDisjoint(with: spool.ids("incoming")))
    }

    @Test func sigtermFromKillCommandMidJobFinishesTheJobAndDiesBySigterm() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 2)
        let worker = try startWorker([
            "--spool", spool.path, "--generate", "8", "--job-delay-ms", "1500", "--exit-mode", "reraise",
        ])
        try worker.waitForLine(containing: "job started", in: .stderr)
        #expect(spool.files("processing").count >= 1)
        try worker.killCommand("TERM")
        let exit = try worker.finish()
        #expect(exit == .signalled(SIGTERM), "\(worker.errorLines)")
        #expect(worker.errorLines.contains { $0.contains("shutdown requested by SIGTERM") })
        checkGracefulStop(worker, spool, total: 8)
        #expect(spool.ids("incoming").count >= 4)  // 2 workers, 1.5 s jobs: the stop came long before the end
    }

    @Test func sigtermWithExitModeCodeExits143() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 3)
        let worker = try startWorker([
            "--spool", spool.path, "--generate", "9", "--job-delay-ms", "1000", "--exit-mode", "code",
        ])
        try worker.waitForLine(containing: "job started", in: .stderr)
        #expect(kill(worker.pid, SIGTERM) == 0)
        let exit = try worker.finish()
        #expect(exit == .exited(128 + SIGTERM), "\(worker.errorLines)")
        checkGracefulStop(worker, spool, total: 9)
    }

    @Test func timeoutCommandStopsTheWorkerGracefully() throws {
        // timeout(1) stands in for Kubernetes: SIGTERM after 2 s, SIGKILL 30 s later if still running.
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 2)
        let command = "exec timeout --preserve-status -s TERM -k 30 2 '\(SpawnedProcess.builtProduct("signal-worker"))' --spool '\(spool.path)' "
            + "--generate 6 --job-delay-ms 1500 --keep-running"
        let shell = try startShell(command)
        let exit = try shell.finish()
        // --preserve-status: timeout reports its child's status, 128 + 15 for a death by SIGTERM.
        #expect(exit == .exited(128 + SIGTERM), "\(shell.errorLines)")
        #expect(shell.errorLines.contains { $0.contains("shutdown requested by SIGTERM") })
        #expect(!shell.errorLines.contains { $0.contains("deadline") && $0.contains("passed") })
        // timeout sends SIGTERM to the worker and then to its process group: one request, not two.
        #expect(!shell.errorLines.contains { $0.contains("exiting now") }, "\(shell.errorLines)")
        checkGracefulStop(shell, spool, total: 6)
    }

    @Test func sighupGoodThenBadConfigAndStatsCountersMatch() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(name: "first", concurrency: 2, jobDelayMs: 20)
        let worker = try startWorker(["--spool", spool.path, "--generate", "4000"])
        try worker.waitForLine(containing: "ready pid=", in: .stderr)
        try worker.killCommand("USR1")
        var line = try worker.waitForLine(containing: "jobs_done", in: .stdout).line
        var s = try stats(line)
        #expect(s["config_generation"] as? Int == 1)
        #expect(s["worker_name"] as? String == "first")
        #expect(received(s, "SIGHUP") == 0)
        #expect(received(s, "SIGUSR1") == 1)

        // A good config: generation 2, the new name and concurrency.
        try spool.writeConfig(name: "second", concurrency: 3, jobDelayMs: 20)
        try worker.killCommand("HUP")
        try worker.waitForLine(containing: "config reloaded: generation 2", in: .stderr)
        try worker.killCommand("USR1")
        line = try worker.waitForLine(containing: "jobs_done", in: .stdout, from: 1).line
        s = try stats(line)
        #expect(s["config_generation"] as? Int == 2)
        #expect(s["worker_name"] as? String == "second")
        #expect(s["workers"] as? Int == 3)
        #expect(received(s, "SIGHUP") == 1)
        #expect(received(s, "SIGUSR1") == 2)
        let doneBefore = s["jobs_done"] as? Int ?? -1

        // A bad config: refused with a reason, generation stays 2, the worker keeps working.
        try "{\"name\": \"third\", \"concurrency\": ".write(toFile: spool.config, atomically: true, encoding: .utf8)
        try worker.killCommand("HUP")
        let refused = try worker.waitForLine(containing: "config reload refused", in: .stderr).line
        #expect(refused.contains(spool.config))
        // Out of range: refused by validation.
        try spool.writeConfig(name: "fourth", concurrency: 500)
        try worker.killCommand("HUP")
        let invalid = try worker.waitForLine(containing: "concurrency must be in 1...64, not 500", in: .stderr).line
        #expect(invalid.contains("config reload refused"))
        // Missing file.
        try FileManager.default.removeItem(atPath: spool.config)
        try worker.killCommand("HUP")
        try worker.waitForLine(containing: "No such file or directory", in: .stderr)

        let doneLines = worker.errorLines.filter { $0.contains("job done") }.count
        try worker.waitForLine(containing: "job done", in: .stderr, from: worker.errorLines.count)  // still working
        #expect(worker.errorLines.filter { $0.contains("job done") }.count > doneLines)
        try worker.killCommand("USR1")
        line = try worker.waitForLine(containing: "jobs_done", in: .stdout, from: 2).line
        s = try stats(line)
        #expect(s["config_generation"] as? Int == 2)
        #expect(s["worker_name"] as? String == "second")
        #expect(s["config_reloads_refused"] as? Int == 3)
        #expect(received(s, "SIGHUP") == 4)
        #expect(received(s, "SIGUSR1") == 3)
        #expect(received(s, "SIGTERM") == 0)
        #expect((s["jobs_done"] as? Int ?? 0) > doneBefore)
        #expect(s["dropped_records"] as? Int == 0)
        #expect(worker.lines.count == 3)  // exactly one line per SIGUSR1

        #expect(kill(worker.pid, SIGTERM) == 0)
        #expect(try worker.finish() == .signalled(SIGTERM))
        checkGracefulStop(worker, spool, total: 4000)
    }

    @Test func sigusr2DumpListsEveryThread() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 3, jobDelayMs: 5)
        let worker = try startWorker(["--spool", spool.path, "--keep-running"])
        try worker.waitForLine(containing: "ready pid=", in: .stderr)
        let before = threadIDs(of: worker.pid)
        try worker.killCommand("USR2")
        let header = try worker.waitForLine(containing: "=== thread dump of pid \(worker.pid)", in: .stderr)
        let end = try worker.waitForLine(containing: "=== end of thread dump", in: .stderr, from: header.index)
        let after = threadIDs(of: worker.pid)
        let dump = Array(worker.errorLines[header.index...end.index])
        print(dump.joined(separator: "\n"))

        let threadLines = dump.filter { $0.hasPrefix("--- thread ") }
        let dumped = threadLines.compactMap { CInt($0.split(separator: " ")[2]) }
        #expect(dumped.count == Set(dumped).count)
        // Every thread that existed before and after the dump is in it (pool threads may come and go).
        let stable = before.intersection(after)
        #expect(stable.isSubset(of: Set(dumped)), "missing: \(stable.subtracting(dumped))")
        #expect(Set(dumped).isSubset(of: before.union(after).union(dumped)))
        #expect(header.line.contains("\(dumped.count) threads"))
        // Our own threads, by name: main, the wait thread, the lifecycle components, the spool watcher, three
        // workers.
        func line(named name: String) -> String? { threadLines.first { $0.contains("\"\(name)\"") } }
        #expect(line(named: "signal-worker")?.contains("(main)") == true)
        #expect(line(named: "signalcore")?.contains("not interruptible") == true)
        // The components' threads and the spool watcher sleep in a condition variable or in read(2): each one
        // runs the dump's handler there.
        for name in ["shutdown", "reload", "stats", "spool-watch"] {
            let thread = try #require(line(named: name), "\(name) missing")
            #expect(thread.contains(": captured,"), "\(thread)")
        }
        #expect(line(named: "dump")?.contains("captured (dumping thread)") == true)
        for n in 1...3 {
            let worker = try #require(line(named: "worker-\(n)"), "worker-\(n) missing")
            #expect(worker.contains(": captured,"), "\(worker)")
        }
        // Symbolised: the idle workers' stacks show the wait they sleep in.
        let frames = dump.filter { $0.hasPrefix("  #") }
        #expect(frames.contains { $0.contains("WorkerPool.sleep(since:") })
        #expect(frames.contains { $0.contains("WorkerPool.loop(index:") })
        #expect(frames.contains { $0.contains("SignalWorkerCommand.run()") })  // the main thread
        #expect(dump.contains { $0.contains("captured (dumping thread)") })
        // Every captured thread has at least its PC.
        #expect(end.line.contains("\(dumped.count) threads"))
        // A thread either answered, could not be asked (and says why), or exited meanwhile.
        for line in threadLines {
            #expect(!line.contains("no answer"), "\(line)")
            if line.contains("exited during the dump"), let tid = CInt(line.split(separator: " ")[2]) {
                #expect(!after.contains(tid))
            }
        }

        #expect(kill(worker.pid, SIGTERM) == 0)
        #expect(try worker.finish() == .signalled(SIGTERM))
    }

    @Test(.timeLimit(.minutes(2)))
    func idleWorkerWakesNoThreadAndLearnsOfNewJobsFromTheKernel() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 2, jobDelayMs: 1)
        let worker = try startWorker(["--spool", spool.path, "--generate", "0", "--keep-running"])
        try worker.waitForLine(containing: "ready pid=", in: .stderr)
        try expectNoWakeUps(of: worker.pid, over: .seconds(10), threads: [
            "signal-worker", "signalcore", "shutdown", "reload", "stats", "dump", "spool-watch", "worker-1", "worker-2",
        ])

        // Nothing in the worker looks at the spool on its own, so only the kernel can tell it of these jobs. A
        // job renamed into incoming/, as the generator and most producers do:
        let staged = spool.path + "/.job-000001.job.tmp"
        try "{\"id\":\"job-000001\"}".write(toFile: staged, atomically: false, encoding: .utf8)
        #expect(rename(staged, spool.path + "/incoming/job-000001.job") == 0)
        try worker.waitForLine(containing: "job done job-000001", in: .stderr, timeout: .seconds(30))
        // A job written in place, noticed when its writer closes it:
        try "{\"id\":\"job-000002\"}".write(toFile: spool.path + "/incoming/job-000002.job", atomically: false, encoding: .utf8)
        try worker.waitForLine(containing: "job done job-000002", in: .stderr, timeout: .seconds(30))

        // SIGHUP reloads the config and looks at incoming/ again.
        try worker.killCommand("HUP")
        try worker.waitForLine(containing: "config reloaded: generation 2", in: .stderr)
        try worker.waitForLine(containing: "rescanning incoming/: 0 job(s) waiting", in: .stderr)
        #expect(kill(worker.pid, SIGTERM) == 0)
        #expect(try worker.finish() == .signalled(SIGTERM), "\(worker.errorLines)")
        #expect(spool.ids("done") == ["job-000001", "job-000002"])
        checkGracefulStop(worker, spool, total: 2)
    }

    @Test func secondSigintExitsAtOnce() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 1)
        let worker = try startWorker(["--spool", spool.path, "--generate", "2", "--job-delay-ms", "60000"])
        let started = try worker.waitForLine(containing: "job started", in: .stderr).line
        try worker.killCommand("INT")
        try worker.waitForLine(containing: "shutdown requested by SIGINT", in: .stderr)
        let clock = ContinuousClock()
        let t0 = clock.now
        try worker.killCommand("INT")
        let exit = try worker.finish(timeout: .seconds(20))
        let took = clock.now - t0
        #expect(exit == .signalled(SIGINT), "\(worker.errorLines)")
        #expect(took < .seconds(10), "took \(took)")  // the job had 60 s of work left
        #expect(worker.errorLines.contains { $0.contains("SIGINT during shutdown: exiting now") })
        // The job in hand was abandoned as it was: it stays in processing/ for the next start.
        let id = try #require(jobIDs([started], "job started").first)
        #expect(spool.ids("processing") == [id])
        #expect(spool.ids("done").isEmpty)
    }

    @Test func deadlineCancelsTheJobInHandAndPutsItBack() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 1)
        let worker = try startWorker([
            "--spool", spool.path, "--generate", "2", "--job-delay-ms", "60000", "--deadline", "0.5",
        ])
        try worker.waitForLine(containing: "job started", in: .stderr)
        #expect(kill(worker.pid, SIGTERM) == 0)
        let exit = try worker.finish(timeout: .seconds(30))
        #expect(exit == .signalled(SIGTERM), "\(worker.errorLines)")
        #expect(worker.errorLines.contains { $0.contains("deadline") && $0.contains("passed") })
        #expect(worker.errorLines.contains { $0.contains("job cancelled job-000001") })
        #expect(spool.files("processing").isEmpty)
        #expect(spool.ids("incoming") == ["job-000001", "job-000002"])
    }

    @Test func sigkillMidJobThenRestartDoesTheJobAgainAndLosesNothing() throws {
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 1)
        let first = try startWorker(["--spool", spool.path, "--generate", "5", "--job-delay-ms", "60000"])
        let started = try first.waitForLine(containing: "job started", in: .stderr).line
        let interrupted = try #require(jobIDs([started], "job started").first)
        try first.killCommand("KILL")
        #expect(try first.finish() == .signalled(SIGKILL))
        #expect(spool.ids("processing") == [interrupted])

        let second = try startWorker(["--spool", spool.path, "--job-delay-ms", "5"])
        let exit = try second.finish()
        #expect(exit == .exited(0), "\(second.errorLines)")
        #expect(second.errorLines.contains { $0.contains("recovered 1 interrupted job(s) from processing/: \(interrupted)") })
        let done = jobIDs(second.errorLines, "job done")
        #expect(done.contains(interrupted))
        #expect(done.count == Set(done).count)
        #expect(Set(done) == Set((1...5).map { String(format: "job-%06d", $0) }))
        #expect(spool.ids("done").count == 5)
        #expect(spool.files("processing").isEmpty && spool.files("incoming").isEmpty)
        #expect(second.errorLines.contains { $0.contains("all jobs done: jobs_done=5") })
    }

    @Test func recoveryDoesNotRedoAJobWhoseResultWasAlreadyWritten() throws {
        // The state a SIGKILL leaves between "result renamed into done/" and "job removed from processing/".
        let spool = try TemporarySpool()
        try spool.writeConfig(concurrency: 1, jobDelayMs: 1)
        for dir in ["incoming", "processing", "done"] {
            try FileManager.default.createDirectory(atPath: spool.path + "/" + dir, withIntermediateDirectories: true)
        }
        try "{}".write(toFile: spool.path + "/processing/job-000001.job", atomically: true, encoding: .utf8)
        try "{\"id\":\"job-000001\"}".write(toFile: spool.path + "/done/job-000001.result", atomically: true, encoding: .utf8)
        try "{}".write(toFile: spool.path + "/processing/job-000002.job", atomically: true, encoding: .utf8)
        try "partial".write(toFile: spool.path + "/done/job-000002.result.tmp", atomically: true, encoding: .utf8)
        let worker = try startWorker(["--spool", spool.path])
        #expect(try worker.finish() == .exited(0), "\(worker.errorLines)")
        #expect(worker.errorLines.contains { $0.contains("removed 1 finished job(s) from processing/: job-000001") })
        #expect(worker.errorLines.contains { $0.contains("recovered 1 interrupted job(s) from processing/: job-000002") })
        #expect(jobIDs(worker.errorLines, "job done") == ["job-000002"])
        #expect(spool.files("done") == ["job-000001.result", "job-000002.result"])
        #expect(try String(contentsOfFile: spool.path + "/done/job-000001.result", encoding: .utf8) == "{\"id\":\"job-000001\"}")
        #expect(spool.files("processing").isEmpty)
    }

    @Test func noArgumentsRunsTheDemoToCompletion() throws {
        let worker = try startWorker([])
        let exit = try worker.finish(timeout: .seconds(120))
        #expect(exit == .exited(0), "\(worker.errorLines)")
        let values = worker.values(in: .stderr)
        let root = try #require(values["spool"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(root.contains("signal-worker."))
        #expect(worker.errorLines.contains { $0.contains("wrote the default config to \(root)/config.json") })
        #expect(worker.errorLines.contains { $0.contains("all jobs done: jobs_done=300") })
        let done = try FileManager.default.contentsOfDirectory(atPath: root + "/done")
        #expect(done.filter { $0.hasSuffix(".result") }.count == 300)
        let config = try String(contentsOfFile: root + "/config.json", encoding: .utf8)
        #expect(config.contains("\"concurrency\": 4"))
    }

    @Test func badArgumentsGiveOneLineErrors() throws {
        let missing = try startWorker(["--spool", "/nonexistent/lifecycle-spool"])
        #expect(try missing.finish() == .exited(66))
        #expect(missing.errorLines == ["signal-worker: error: spool directory /nonexistent/lifecycle-spool does not exist (create it, or pass --create-spool)"])

        let spool = try TemporarySpool()
        try "{ not json".write(toFile: spool.config, atomically: true, encoding: .utf8)
        let bad = try startWorker(["--spool", spool.path])
        #expect(try bad.finish() == .exited(78))
        #expect(bad.errorLines.count == 1)
        #expect(bad.errorLines.first?.hasPrefix("signal-worker: error: cannot use config: \(spool.config) is not a valid configuration") == true)

        let unreadable = try startWorker(["--spool", spool.path, "--config", spool.path])
        #expect(try unreadable.finish() == .exited(78))
        #expect(unreadable.errorLines.count == 1)
        #expect(unreadable.errorLines.first?.contains("cannot use config: cannot read \(spool.path): read:") == true)

        let workers = try startWorker(["--spool", spool.path, "--workers", "0"])
        #expect(try workers.finish() == .exited(64))
        #expect(workers.errorLines == ["signal-worker: error: --workers must be in 1...64, not 0"])

        let parse = try startWorker(["--workers", "many"])
        #expect(try parse.finish() == .exited(64))
        #expect(parse.errorLines == ["signal-worker: error: The value 'many' is invalid for '--workers <n>' (see --help)"])
        let unknown = try startWorker(["--bogus"])
        #expect(try unknown.finish() == .exited(64))
        #expect(unknown.errorLines == ["signal-worker: error: Unknown option '--bogus' (see --help)"])

        // A --config that does not exist yet is written with the defaults, and the worker runs with it.
        let fresh = spool.path + "/fresh.json"
        let ok = try startWorker(["--spool", spool.path, "--config", fresh, "--generate", "3", "--job-delay-ms", "1"])
        #expect(try ok.finish() == .exited(0), "\(ok.errorLines)")
        let written = try String(contentsOfFile: fresh, encoding: .utf8)
        #expect(written.contains("\"job_delay_ms\": 50"))
        #expect(ok.errorLines.contains { $0.contains("all jobs done: jobs_done=3") })

        let help = try startWorker(["--help"])
        #expect(try help.finish() == .exited(0))
        let text = help.lines.joined(separator: "\n")
        for flag in ["--spool", "--config", "--generate", "--workers", "--job-delay-ms", "--deadline", "--exit-mode", "--keep-running", "SIGUSR2"] {
            #expect(text.contains(flag), "--help lacks \(flag)")
        }
    }
}
