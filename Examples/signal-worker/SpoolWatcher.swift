#if canImport(Glibc)
import Glibc
#endif

/// Learns of new jobs from the kernel: an inotify watch on `incoming/`, read by a thread ("spool-watch") that
/// sleeps in `read(2)` until the kernel reports a file moved or written into the directory.
///
/// The watch reports what the producers do: a job renamed into incoming/ (the generator, a requeue, any producer
/// that writes elsewhere and renames) is `IN_MOVED_TO`; a job written in place is `IN_CLOSE_WRITE` once the
/// writer closes it. Creation alone (`IN_CREATE`) is not watched: the file may still be empty. The names in the
/// events are not needed: a worker that is told "something arrived" lists the directory (Spool.claim), so a
/// burst of events is one wake-up, and an overflow of the kernel's event queue (`IN_Q_OVERFLOW`) is just
/// another "look again".
///
/// What inotify cannot see (a spool on a network file system, whose other clients change it behind the kernel's
/// back) is found by the rescan that SIGHUP triggers.
final class SpoolWatcher: Sendable {
    let directory: String
    private let fd: CInt

    /// Watches `directory`. Set it up before the first look at the directory, so that a job that arrives
    /// between that look and the watch is not missed. The corresponding C functions are `inotify_init1` and
    /// `inotify_add_watch`.
    init(directory: String) throws(SpoolError) {
        self.directory = directory
        fd = inotify_init1(CInt(IN_CLOEXEC))
        if fd < 0 { throw SpoolError(call: "inotify_init1", path: directory, code: errno) }
        if inotify_add_watch(fd, directory, UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE)) < 0 {
            let code = errno
            close(fd)
            throw SpoolError(call: "inotify_add_watch", path: directory, code: code)
        }
    }

    /// Starts the thread; it calls `arrived` after each batch of events (on its own thread). Returns the
    /// pthread_create error, or 0.
    func start(_ arrived: @escaping @Sendable () -> Void) -> CInt {
        startNamedThread("spool-watch") { [self] in run(arrived) }
    }

    private func run(_ arrived: @escaping @Sendable () -> Void) {
        // One read returns every event queued (each is a 16-byte header and a name of at most NAME_MAX + 1).
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                Log.error("spool-watch: read: \(String(cString: strerror(errno))) (errno: \(errno)); new jobs are found at SIGHUP only")
                return
            }
            if n == 0 { continue }
            if watchRemoved(buffer[0..<n]) {
                Log.warning("spool-watch: \(directory) was removed or unmounted; new jobs are found at SIGHUP only")
                arrived()
                return
            }
            arrived()
        }
    }

    /// Whether the batch says the watch ended (`IN_IGNORED`: the directory was deleted or its file system
    /// unmounted).
    private func watchRemoved(_ events: ArraySlice<UInt8>) -> Bool {
        var offset = events.startIndex
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= events.endIndex {
            let (mask, length) = events.withUnsafeBytes { raw -> (UInt32, Int) in
                let base = raw.baseAddress! + (offset - events.startIndex)
                let event = base.loadUnaligned(as: inotify_event.self)
                return (event.mask, Int(event.len))
            }
            if mask & UInt32(IN_IGNORED) != 0 { return true }
            offset += header + length
        }
        return false
    }
}
