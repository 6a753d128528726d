#if ServiceLifecycleIntegration && TelemetryIntegration
import ChildProcessTesting
import SignalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The integrations in the shape the README shows: an async `@main` program whose ServiceGroup runs under a
/// SignalShutdownService, default arguments everywhere (SignalCoreServiceHelper). Each test runs the program
/// in its own process; the signals come from this process or from a sender process of their own.
@Suite struct ServiceShapeTests {
    /// 100 000 values of SIGRTMIN+1, queued by one sender process that retries on EAGAIN, reach the `for await`
    /// loop of a service exactly once each and in order. Exclusive use of the signal queue: back-pressure fills
    /// the user's queue of pending real-time signals, which parallel tests share.
    ///
    /// Run twice: with the receiver's RLIMIT_SIGPENDING as the system set it (the kernel's queue is then large
    /// enough that the sender rarely or never sees EAGAIN), and lowered to 256, so that the back-pressure
    /// reaches the sender as EAGAIN over and over (the kernel checks the limit of the receiving process).
    @Test(arguments: [nil, 256] as [Int?])
    func realtimeFloodReachesTheServiceCompleteAndInOrder(pendingLimit: Int?) throws {
        let count = 100_000
        let receiver = try SpawnedProcess(
            "SignalCoreServiceHelper", ["flood", "\(count)"], standardError: .separate, signalQueue: .exclusive)
        try receiver.waitForLine(startingWith: "READY")
        if let pendingLimit {  // prlimit(1), util-linux: Glibc's Swift module has no prlimit(2)
            let (prlimit, status) = try SpawnedProcess.run(
                "/usr/bin/prlimit", ["--pid", "\(receiver.pid)", "--sigpending=\(pendingLimit):\(pendingLimit)"],
                standardError: .mergedWithOutput, signalQueue: nil)
            #expect(status == .exited(0), "\(prlimit.lines)")
        }
        let sender = try SpawnedProcess(
            "SignalCoreServiceHelper", ["send", "\(receiver.pid)", "\(Signal.realtime(1).rawValue)", "\(count)"],
            signalQueue: nil)
        let sent = try sender.finish(timeout: .seconds(150))
        #expect(sent == .exited(0), "\(sender.lines)")
        let eagain = Int(fields(sender.lines(startingWith: "sent ").first ?? "")["eagain"] ?? "") ?? -1
        if pendingLimit != nil { #expect(eagain > 0, "\(sender.lines)") }
        // A flood that does not complete is reported at the graceful shutdown.
        _ = try? receiver.waitForLine(startingWith: "flood ", timeout: .seconds(120))
        try receiver.send(SIGTERM)
        let exit = try receiver.finish()
        let flood = fields(receiver.lines(startingWith: "flood ").first ?? "")
        let report = receiver.lines(startingWith: "flood ") + receiver.lines(startingWith: "mask_spread")
            + receiver.lines(startingWith: "thread ") + sender.lines
        #expect(flood["received"] == "\(count)", "\(report)")
        #expect(flood["unique"] == "\(count)")
        #expect(flood["missing"] == "0")
        #expect(flood["duplicates"] == "0")
        #expect(flood["backwards"] == "0")
        #expect(flood["first_out_of_order_index"] == "none", "\(report)")
        #expect(flood["delivered"] == "\(count)")
        #expect(flood["dropped_events"] == "0")
        #expect(flood["senders"] == "1")
        #expect(exit == .signalled(SIGTERM), "\(receiver.lines) \(receiver.errorLines)")
        // The numbers behind a run, in the test's log.
        print("flood (RLIMIT_SIGPENDING \(pendingLimit.map(String.init) ?? "as set")): \(receiver.lines(startingWith: "flood ").first ?? "none"); \(sender.lines.last ?? "")")
    }

    /// A SIGHUP reloads; SIGTERM, then a SIGHUP while the server drains: the reload service has stopped by then (the group stops
    /// services in reverse order), but SIGHUP stays caught, so it is counted and the process lives on until the
    /// drain ends, then dies by SIGTERM, not by SIGHUP.
    @Test func sighupDuringTheDrainDoesNotEndTheProcess() throws {
        let helper = try SpawnedProcess("SignalCoreServiceHelper", ["drain-hup"], standardError: .separate)
        // The reload service subscribed when it was made: SIGHUP is caught before the group runs anything.
        try helper.waitForLine(startingWith: "server running=1 hup_watched=1")
        try helper.send(SIGHUP)
        try helper.waitForLine(startingWith: "reloaded number=1 ")
        try helper.send(SIGTERM)
        let draining = fields(try helper.waitForLine(startingWith: "draining "))
        #expect(draining["hup_watched"] == "1")
        #expect(draining["hup_delivered"] == "1")
        try helper.send(SIGHUP)
        let exit = try helper.finish()
        #expect(exit == .signalled(SIGTERM), "\(helper.lines) \(helper.errorLines)")
        #expect(helper.lines.contains("drained hup_delivered=2"), "\(helper.lines)")
        #expect(helper.lines(startingWith: "reloaded ").count == 1)
        #expect(helper.lines(startingWith: "run returned").isEmpty)
    }

    /// A second SIGTERM while a server ignores the graceful shutdown cancels the group; the cancellation's error
    /// is not thrown at the top level (no "Fatal error"), and the process dies by SIGTERM.
    @Test func secondSigtermEndsTheGroupWithoutACrash() throws {
        let helper = try SpawnedProcess("SignalCoreServiceHelper", ["double-term"], standardError: .separate)
        try helper.waitForLine(startingWith: "server running=1")
        try helper.send(SIGTERM)
        try helper.waitForLine(startingWith: "draining")
        try helper.send(SIGTERM)
        let exit = try helper.finish()
        #expect(exit == .signalled(SIGTERM), "\(helper.lines) \(helper.errorLines)")
        #expect(helper.lines.contains("cancelled"))
        #expect(helper.lines(startingWith: "slept_out").isEmpty)
        #expect(!helper.errorLines.contains { $0.contains("Fatal error") }, "\(helper.errorLines)")
        let received = helper.errorLines.filter { $0.contains("signal received") }
        #expect(received.count == 2, "\(helper.errorLines)")
        #expect(received.last?.contains("action=cancellation") == true)
    }

    /// A server, a reload service and a telemetry observer, all waiting, for 10 s: no thread of the process
    /// goes to sleep again (voluntary context switches from /proc/PID/task/*/status), SignalCore's wait thread
    /// and the task pool's threads included. SIGTERM then ends it as usual.
    ///
    /// One thread is not SignalCore's and wakes anyway: libdispatch's event thread, which on Linux arms a 1 s
    /// timer of its own to watch its worker pools (every Swift program with Dispatch has it). It is told apart
    /// by what it waits in (epoll), and held to that pace.
    @Test func idleServiceDoesNotWake() throws {
        let helper = try SpawnedProcess("SignalCoreServiceHelper", ["idle"], standardError: .separate)
        try helper.waitForLine(startingWith: "server running=1")
        // Let start-up settle: the telemetry's first report, the threads the runtime makes.
        var pause = timespec(tv_sec: 1, tv_nsec: 0)
        nanosleep(&pause, nil)
        let before = threadSwitches(helper.pid)
        pause = timespec(tv_sec: 10, tv_nsec: 0)
        nanosleep(&pause, nil)
        let after = threadSwitches(helper.pid)
        var woke: [String] = []
        var dispatchEvents: [Int] = []
        for (tid, thread) in after {
            let wakes = thread.switches - (before[tid]?.switches ?? 0)
            if thread.waitsInEpoll {
                dispatchEvents.append(wakes)
            } else if wakes != 0 {
                woke.append("\(tid) \(thread.name): \(wakes)")
            }
        }
        #expect(!after.isEmpty)
        #expect(after.values.contains { $0.name == "signalcore" })
        #expect(woke.isEmpty, "threads that woke in 10 s of idling: \(woke)")
        #expect(dispatchEvents.count <= 1 && dispatchEvents.allSatisfy { $0 <= 12 }, "\(dispatchEvents)")
        try helper.send(SIGTERM)
        #expect(try helper.finish() == .signalled(SIGTERM), "\(helper.lines) \(helper.errorLines)")
    }
}

/// One thread of a process, as /proc shows it.
struct ThreadSample {
    var name: String
    /// Voluntary context switches so far: how often it went to sleep.
    var switches: Int
    /// Whether it sits in epoll_wait or epoll_pwait (libdispatch's event thread does).
    var waitsInEpoll: Bool
}

/// The system call numbers of epoll_wait and epoll_pwait.
#if arch(x86_64)
let epollWaits: Set<Int> = [232, 281]
#else
let epollWaits: Set<Int> = [22]  // aarch64: epoll_pwait
#endif

/// Every thread of process `pid`, by thread id.
func threadSwitches(_ pid: pid_t) -> [String: ThreadSample] {
    var result: [String: ThreadSample] = [:]
    guard let directory = opendir("/proc/\(pid)/task") else { return result }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let tid = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard Int(tid) != nil else { continue }
        let name = readText("/proc/\(pid)/task/\(tid)/comm").filter { $0 != "\n" }
        let status = readText("/proc/\(pid)/task/\(tid)/status")
        let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
        let switches = line.flatMap { Int($0.split(separator: "\t").last ?? "") } ?? -1
        let call = Int(readText("/proc/\(pid)/task/\(tid)/syscall").split(separator: " ").first ?? "") ?? -1
        result[tid] = ThreadSample(name: name, switches: switches, waitsInEpoll: epollWaits.contains(call))
    }
    return result
}

/// The contents of a small file ("" when it cannot be read).
func readText(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 8192)
    let n = read(fd, &buffer, buffer.count)
    return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
}

#endif
