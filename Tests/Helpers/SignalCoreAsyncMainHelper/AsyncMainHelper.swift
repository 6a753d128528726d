// Stray deliveries in an async `@main` program.
//
// Swift's async main hands the main thread to libdispatch, which parks it in sigsuspend() with an EMPTY mask:
// whatever mask the engine gives it, the kernel may deliver any signal there while it waits. This helper starts
// the engine from a pool thread while the main thread is parked, has a thread of its own queue real-time
// signals from the moment the fallback handler is installed (before start has finished blocking them), and
// lets the parent send more after start. Nothing may run a default action (the process must survive) and
// every delivery must be counted.
//
// Usage: SignalCoreAsyncMainHelper <own RT signals> <RT signals the parent will queue>
import CSignalShim
import CSignalVerifySupport
import ChildProcessTesting
import SignalCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The system call a thread is in, from /proc/self/task/TID/syscall ("running" if none).
func currentSyscall(_ tid: pid_t) -> String {
    let fd = open("/proc/self/task/\(tid)/syscall", O_RDONLY)
    if fd < 0 { return "gone" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = read(fd, &buffer, buffer.count)
    if n <= 0 { return "unknown" }
    return String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ").first.map(String.init) ?? "unknown"
}


@main
struct AsyncMainHelper {
    static let standard: [Signal] = [.sigterm, .sigint, .sighup, .sigusr1, .sigusr2]
    static let rt = Signal.realtime(0)

    static func main() async {
        let args = CommandLine.arguments
        if args.count > 1, args[1] == "order" {
            await order(count: args.count > 2 ? Int(args[2]) ?? 10_000 : 10_000)
            return
        }
        let ownCount = args.count > 1 ? Int(args[1]) ?? 5000 : 5000
        let parentCount = args.count > 2 ? Int(args[2]) ?? 1000 : 1000
        let engine = SignalEngine.shared
        let mainTID = getpid()  // the main thread's tid is the pid
        let clock = ContinuousClock()

        // The sender: waits until the fallback handler is installed for rt (the first step of start), then
        // queues to the process while start goes on spreading the mask, and after.
        let ownSent = Atomic<Int>(0)
        let sawHandlerBeforeRunning = Atomic<Bool>(false)
        let sender = PlainThread {
            let deadline = clock.now + .seconds(20)
            while !csignal_is_engine_handler(rt.rawValue) {
                if clock.now > deadline { return }
                sched_yield()
            }
            // Start has installed the handler but may not have finished: this is "before start returned".
            sawHandlerBeforeRunning.store(!engine.isRunning || engine.lastMaskSpread.passes == 0, ordering: .relaxed)
            var i = 0
            while i < ownCount && clock.now < deadline {
                var value = sigval()
                value.sival_int = CInt(i + 1)
                if sigqueue(getpid(), rt.rawValue, value) == 0 {
                    i += 1
                    ownSent.store(i, ordering: .relaxed)
                } else if errno == EAGAIN {
                    sched_yield()
                } else {
                    return
                }
            }
        }

        // Start from a pool thread while this (main) thread is parked by libdispatch.
        let startTask = Task.detached { () -> String? in
            do {
                try engine.start(watching: SignalSet(standard + [rt]))
                return nil
            } catch { return "\(error)" }
        }
        // While we await, the main thread sits in the kernel: look at it from another thread.
        let observation = Task.detached { () -> String in
            for _ in 0..<2000 {
                let call = currentSyscall(mainTID)
                if call == "130" { return call }  // rt_sigsuspend on x86_64
                try? await Task.sleep(for: .milliseconds(1))
            }
            return currentSyscall(mainTID)
        }
        if let error = await startTask.value { fail("start: \(error)") }
        let mainSyscall = await observation.value
        say("main_thread_syscall=\(mainSyscall) handler_seen_during_start=\(sawHandlerBeforeRunning.load(ordering: .relaxed) ? 1 : 0)")
        say("READY pid=\(getpid())")

        // Wait for: every own RT signal, the parent's RT signals, and one of each standard signal.
        let deadline = clock.now + .seconds(60)
        func complete() -> Bool {
            let expected = UInt64(ownSent.load(ordering: .relaxed) + parentCount)
            return csignal_delivered(rt.rawValue) >= expected && standard.allSatisfy { csignal_delivered($0.rawValue) >= 1 }
        }
        while !complete() || ownSent.load(ordering: .relaxed) < ownCount {
            if clock.now > deadline { break }
            try? await Task.sleep(for: .milliseconds(2))  // the main thread parks in sigsuspend meanwhile
        }
        sender.join()
        let rtCounts = engine.counts(for: rt)
        say("own_sent=\(ownSent.load(ordering: .relaxed)) parent_expected=\(parentCount) rt_delivered=\(rtCounts.delivered) rt_via_waiter=\(rtCounts.viaWaitThread) rt_via_handler=\(rtCounts.viaHandler)")
        for s in standard {
            let c = engine.counts(for: s)
            say("standard \(s) delivered=\(c.delivered) via_handler=\(c.viaHandler)")
        }
        check(rtCounts.delivered == UInt64(ownSent.load(ordering: .relaxed) + parentCount),
              "every RT signal counted exactly (own + parent)")
        check(standard.allSatisfy { engine.counts(for: $0).delivered >= 1 }, "every standard signal counted")
        let handlerRoute = SignalSet(standard + [rt]).reduce(UInt64(0)) { $0 + engine.counts(for: $1).viaHandler }
        say("handler_route_total=\(handlerRoute)")
        do { try engine.stop() } catch { fail("stop: \(error)") }
        say("DONE")
    }

    /// The shape services run: an async `@main` program awaits a real-time signal with `for await` and the
    /// library's defaults. The parent queues `count` values with sigqueue (retrying on EAGAIN); every value must
    /// arrive exactly once, in order, taken by the wait thread: the engine took over the parked main thread, so
    /// there is one dequeuer.
    static func order(count: Int) async {
        let engine = SignalEngine.shared
        let events: SignalEvents
        do { events = try engine.events(for: [rt]) } catch { fail("events: \(error)") }
        let spread = engine.lastMaskSpread
        say("adopted_parker=\(spread.adoptedParkerThreadID ?? 0) pid=\(getpid())")
        let main = (try? engine.auditThreads())?.first { $0.threadID == getpid() }
        say("main_role=\(main.map { "\($0.role)" } ?? "none") main_open=\(main.map { "\($0.openWatched)" } ?? "none")")
        say("READY pid=\(getpid())")
        var expected: CInt = 1
        var outOfOrder = 0
        var firstBad: CInt = 0
        var viaHandler = 0
        for await event in events {
            if event.value != expected {
                outOfOrder += 1
                if firstBad == 0 { firstBad = expected }
            }
            if event.route == .handler { viaHandler += 1 }
            expected = event.value + 1
            if event.value == CInt(count) { break }
        }
        let counts = engine.counts(for: rt)
        say("received_last=\(expected - 1) out_of_order=\(outOfOrder) first_bad=\(firstBad) via_handler=\(viaHandler) delivered=\(counts.delivered) dropped=\(counts.droppedRecords)")
        say("DONE")
    }
}
