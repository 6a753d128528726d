// SignalCore's receivers inside an async @main program: the shape a service runs.
//
//   BenchAsyncReceiver MODE SHM        MODE: sc-await, sc-await-exec, sc-blocking, sc-poll
//
// In an async @main program on Linux the main thread calls dispatch_main(), which parks it in libdispatch's
// sigsuspend loop with an empty mask; the main task runs on libdispatch's worker threads. So here, unlike in
// BenchReceiver, there is a thread that does not block the watched signals whenever it sleeps. The loops are
// the same as BenchReceiver's (Sources/SignalCoreReceivers): an async loop runs as a child task of a task
// group, as a service's tasks do; a blocking or polling loop gets a thread of its own, as a service would give
// it (a loop that blocks must not occupy the concurrency pool). Watches SIGUSR1 (slot 0) and SIGRTMIN+1
// (slot 1); the driver SIGKILLs the process when done.
import CBench
import SignalCoreReceivers

#if canImport(Glibc)
import Glibc
#endif

@main
struct BenchAsyncReceiver {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3, let path = SignalCorePath(rawValue: arguments[1]) else {
            fail("usage: BenchAsyncReceiver sc-await|sc-await-exec|sc-blocking|sc-poll SHM")
        }
        guard let page = cbench_map(arguments[2], 0) else { fail("cbench_map \(arguments[2]): errno \(errno)") }
        nonisolated(unsafe) let shm = page
        let loop: SignalCoreLoop
        do {
            loop = try SignalCoreReceivers.prepare(
                path,
                seen: { slot, value in
                    cbench_seen(shm, slot, value)
                    return true
                },
                seenMany: { slot, count in cbench_seen_many(shm, slot, count) })
        } catch {
            fail("\(error)")
        }
        switch loop {
        case .async(let body):
            cbench_set_ready(shm)
            await withDiscardingTaskGroup { group in
                group.addTask { await body() }
            }
        case .blocking(let body):
            startThread(body)
            cbench_set_ready(shm)
        }
        while true { try? await Task.sleep(for: .seconds(3600)) }
    }

    static func fail(_ message: String) -> Never {
        let text = "BenchAsyncReceiver: \(message)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }

    /// Runs `body` on a new POSIX thread.
    static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        if rc != 0 { fail("pthread_create: errno \(rc)") }
        pthread_detach(thread)
    }
}
