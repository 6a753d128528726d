import CSignalShim

#if canImport(Glibc)
import Glibc
#endif

/// Starts a detached thread named `name` (15 bytes kept) that runs `body`, and returns once it runs under that
/// name, so that a thread list taken afterwards shows it. Returns the pthread_create error, or 0.
@discardableResult
func startNamedThread(_ name: String, _ body: @escaping @Sendable () -> Void) -> CInt {
    let start = ThreadStart(name: name, body: body)
    let box = Unmanaged.passRetained(start).toOpaque()
    var thread = pthread_t()
    let err = pthread_create(&thread, nil, { raw in
        let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
        csignal_set_thread_name(start.name)
        start.running.update { $0 = true }
        start.body()
        return nil
    }, box)
    if err != 0 {
        Unmanaged<ThreadStart>.fromOpaque(box).release()
        return err
    }
    pthread_detach(thread)
    // Bounded: a new thread runs at once.
    _ = start.running.wait(timeout: .seconds(10)) { $0 }
    return 0
}

/// What a new thread needs, handed over through pthread_create.
private final class ThreadStart: Sendable {
    let name: String
    let body: @Sendable () -> Void
    let running = Condition(false)
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}
