import CSignalShim
import SignalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A stack trace of every thread of the process, taken while it keeps running: like Python's faulthandler
/// with `all_threads`, or Go's SIGQUIT dump without the exit.
///
/// Each thread is interrupted once with the engine's internal signal (``Signal/engineInternal``, usually
/// SIGRTMAX) and walks its own
/// frame-pointer chain into a preallocated slot, in handler context, with nothing that allocates or locks
/// (`Sources/CSignalShim/dump.c`). The calling thread walks its own stack directly. Symbols are looked up
/// afterwards, here, with `dladdr`, and Swift names are demangled.
///
/// Every thread listed in `/proc/self/task` appears in the dump. A thread that blocks the internal signal cannot
/// be interrupted (SignalCore's wait thread blocks it and takes it as a doorbell, and so does a thread that
/// borrows its role while it waits in ``SignalSubscription/next(timeout:)``); it is listed as not
/// interruptible, with the system call it sleeps in and its program counter from
/// `/proc/self/task/TID/syscall`.
///
/// Limits: frames of code built without frame pointers (most of the C library) are skipped; the walk then
/// resumes at the next frame that has one. The engine must be running.
public struct ThreadDump: Sendable, CustomStringConvertible {
    /// One return address (or the interrupted program counter, for frame 0) and what is known about it.
    public struct Frame: Sendable, Hashable, CustomStringConvertible {
        public var address: UInt64
        /// The (demangled) symbol that contains the address, if the image exports one.
        public var symbol: String?
        /// Distance from the symbol's start, or from the image's load address when no symbol covers it.
        public var offset: UInt64
        /// The file of the image (executable or shared library), if known.
        public var image: String?

        public var description: String {
            let hex = "0x" + String(address, radix: 16)
            let file = image.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
            if let symbol { return "\(hex) \(symbol)+\(offset)" + (file.map { " (\($0))" } ?? "") }
            // No exported symbol: the offset in the image, for addr2line -e IMAGE 0xOFFSET.
            if let file { return "\(hex) ??? (\(file)+0x\(String(offset, radix: 16)))" }
            return "\(hex) ???"
        }
    }

    /// What happened to one thread.
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        /// Its handler captured the stack.
        case captured
        /// The thread that took the dump: it walked its own stack.
        case callingThread
        /// It cannot run the internal signal's handler (it blocks it, or it is the wait thread); the string
        /// says why and what it is doing, from /proc.
        case notInterruptible(String)
        /// It did not answer in time (busy in a long uninterruptible system call, stopped, or exiting).
        case noAnswer
        /// It exited between listing and asking.
        case exited
        /// More threads than the dump's preallocated slots.
        case tableFull
        /// The request could not be sent (EAGAIN: the user's queued-signal limit, RLIMIT_SIGPENDING, is full).
        case requestFailed(call: String, errno: CInt)

        public var description: String {
            switch self {
            case .captured: return "captured"
            case .callingThread: return "captured (dumping thread)"
            case .notInterruptible(let why): return "not interruptible: \(why)"
            case .noAnswer: return "no answer"
            case .exited: return "exited during the dump"
            case .tableFull: return "not captured: more than \(CSIGNAL_DUMP_MAX_THREADS) threads"
            case .requestFailed(let call, let code):
                return "could not be asked: \(call): \(String(cString: strerror(code))) (errno: \(code))"
            }
        }
    }

    /// One thread of the process.
    public struct ThreadStack: Sendable, CustomStringConvertible {
        /// Kernel thread id.
        public var threadID: CInt
        /// The thread's name (`comm`).
        public var name: String
        public var isWaitThread: Bool
        public var status: Status
        /// Innermost first. Empty unless captured.
        public var frames: [Frame]
        /// What the walk noticed ("resynchronised by scanning", "truncated", ...).
        public var notes: [String]

        public var description: String {
            var roles: [String] = []
            if isWaitThread { roles.append("wait thread") }
            if threadID == getpid() { roles.append("main") }
            let role = roles.isEmpty ? "" : " (" + roles.joined(separator: ", ") + ")"
            var text = "--- thread \(threadID) \"\(name)\"\(role): \(status)"
            if !frames.isEmpty { text += ", \(frames.count) frames" }
            if !notes.isEmpty { text += " [" + notes.joined(separator: "; ") + "]" }
            for (i, frame) in frames.enumerated() { text += "\n  #\(i)  \(frame)" }
            return text
        }
    }

    public var processID: CInt
    public var threads: [ThreadStack]
    /// How stacks were read: "process_vm_readv" (faults come back as errors) or "direct loads".
    public var readMethod: String
    /// Time the capture took, from the first request to the last answer.
    public var captureDuration: Duration

    /// Captures every thread's stack now. Waits up to `timeout` for the threads to answer.
    /// Call it from an ordinary thread or task (it reads /proc and looks up symbols). One dump runs at a time.
    public static func capture(timeout: Duration = .seconds(2)) throws(SignalError) -> ThreadDump {
        let engine = SignalEngine.shared
        guard engine.isRunning else { throw .notRunning }
        let me = SignalSender.currentThreadID
        // Set at the engine's first start, which isRunning implies.
        guard let internalSignal = Signal.engineInternal else { throw .notRunning }
        let clock = ContinuousClock()

        let err = csignal_dump_begin()
        if err == ESRCH { throw .notRunning }
        if err != 0 { throw .system(call: "csignal_dump_begin", errno: err) }
        let started = clock.now
        let list: [ThreadMaskReport]
        do {
            list = try engine.auditThreads()
        } catch {
            csignal_dump_end()
            throw error
        }

        enum Plan { case slot(UInt32), status(Status) }
        var plans: [Plan] = []
        var requested: UInt32 = 0
        var nextSlot: UInt32 = 0
        for thread in list {
            if nextSlot >= UInt32(CSIGNAL_DUMP_MAX_THREADS) {
                plans.append(.status(.tableFull))
                continue
            }
            if thread.threadID == me {
                csignal_dump_capture_self(nextSlot)
                plans.append(.slot(nextSlot))
                nextSlot += 1
            } else if thread.isWaitThread {
                // It blocks the internal signal; in sigwaitinfo /proc shows it unblocked, but the wait thread
                // would take a request as a doorbell, not run the handler.
                plans.append(.status(.notInterruptible(
                    "the wait thread takes \(internalSignal) with sigwaitinfo; " + describeSyscall(of: thread.threadID))))
            } else if thread.blocked.contains(internalSignal) {
                plans.append(.status(.notInterruptible("blocks \(internalSignal); " + describeSyscall(of: thread.threadID))))
            } else {
                var e = csignal_dump_request(nextSlot, thread.threadID)
                // EAGAIN: the user's queued-signal limit (RLIMIT_SIGPENDING, shared by all of the user's
                // processes) is full. Others may drain it soon: retry, bounded.
                var retries = 0
                while e == EAGAIN, retries < 50 {
                    retries += 1
                    var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
                    nanosleep(&pause, nil)
                    e = csignal_dump_request(nextSlot, thread.threadID)
                }
                if e == 0 {
                    plans.append(.slot(nextSlot))
                    requested += 1
                    nextSlot += 1
                } else {
                    plans.append(.status(e == ESRCH ? .exited : .requestFailed(call: "tgkill", errno: e)))
                }
            }
        }
        // Wait for the answers in short steps: a thread that exits after its request never answers, and once
        // every missing one is gone there is nothing left to wait for.
        // A thread that sleeps in sigtimedwait with the internal signal in its set (a thread that borrowed the
        // engine's wait role: it blocks that signal, but /proc shows the temporary mask of the wait) takes the request off
        // the queue as a wake-up and never runs the handler: once seen there, it is not waited for.
        var waitingForSignals = Set<CInt>()
        let waitDeadline = clock.now + timeout
        while csignal_dump_wait(requested, 20_000_000) < requested, clock.now < waitDeadline {
            var missing = false
            for (thread, plan) in zip(list, plans) {
                guard case .slot(let index) = plan, thread.threadID != me,
                    csignal_dump_state(index) == CInt(CSIGNAL_DUMP_REQUESTED),
                    !waitingForSignals.contains(thread.threadID),
                    access("/proc/self/task/\(thread.threadID)", F_OK) == 0
                else { continue }
                if inSigtimedwait(thread.threadID) { waitingForSignals.insert(thread.threadID) } else { missing = true }
            }
            if !missing { break }
        }
        var raw: [(csignal_dump_stack?, Status)] = []
        for (thread, plan) in zip(list, plans) {
            switch plan {
            case .status(let status): raw.append((nil, status))
            case .slot(let index):
                var stack = csignal_dump_stack()
                let state = csignal_dump_take(index, &stack)
                if state == CInt(CSIGNAL_DUMP_CAPTURED) {
                    raw.append((stack, thread.threadID == me ? .callingThread : .captured))
                } else if access("/proc/self/task/\(thread.threadID)", F_OK) != 0 {
                    raw.append((nil, .exited))
                } else if waitingForSignals.contains(thread.threadID) || inSigtimedwait(thread.threadID) {
                    raw.append((nil, .notInterruptible(
                        "waits for signals in sigtimedwait with \(internalSignal) blocked (a borrower of the engine's wait "
                            + "role takes the request as a wake-up); " + describeSyscall(of: thread.threadID))))
                } else {
                    raw.append((nil, .noAnswer))
                }
            }
        }
        let duration = clock.now - started
        let method = csignal_dump_uses_vm_readv() ? "process_vm_readv" : "direct loads"
        csignal_dump_end()

        // Outside the dump: symbols.
        var symbolizer = Symbolizer()
        var threads: [ThreadStack] = []
        for (thread, (stack, status)) in zip(list, raw) {
            var frames: [Frame] = []
            var notes: [String] = []
            if var stack {
                let count = Int(stack.frame_count)
                withUnsafeBytes(of: &stack.frames) { buffer in
                    let addresses = buffer.bindMemory(to: UInt64.self)
                    for i in 0..<min(count, addresses.count) { frames.append(symbolizer.frame(addresses[i])) }
                }
                if stack.flags & UInt32(CSIGNAL_DUMP_FLAG_RESYNCED) != 0 { notes.append("chain found by scanning the stack") }
                if stack.flags & UInt32(CSIGNAL_DUMP_FLAG_TRUNCATED) != 0 { notes.append("truncated at \(CSIGNAL_DUMP_MAX_FRAMES) frames") }
                if stack.flags & UInt32(CSIGNAL_DUMP_FLAG_NO_STACK) != 0 { notes.append("stack mapping unknown: PC only") }
                if stack.flags & UInt32(CSIGNAL_DUMP_FLAG_FAULT) != 0 { notes.append("stack read failed") }
            }
            threads.append(ThreadStack(
                threadID: thread.threadID, name: thread.name, isWaitThread: thread.isWaitThread, status: status,
                frames: frames, notes: notes))
        }
        return ThreadDump(processID: getpid(), threads: threads, readMethod: method, captureDuration: duration)
    }

    /// The whole dump as text: a header line, each thread with its frames, and a summary line.
    public var description: String {
        let captured = threads.filter { $0.status == .captured || $0.status == .callingThread }.count
        let blocked = threads.filter { if case .notInterruptible = $0.status { return true } else { return false } }.count
        var text = "=== thread dump of pid \(processID): \(threads.count) threads (stacks read with \(readMethod), "
            + "capture took \(captureDuration)) ===\n"
        for thread in threads { text += thread.description + "\n" }
        text += "=== end of thread dump: \(threads.count) threads, \(captured) captured, \(blocked) not interruptible, "
            + "\(threads.count - captured - blocked) other ==="
        return text
    }

    /// Writes a dump with `write` on every delivery of `signal` from now on: subscribes to it, which makes the
    /// engine watch it (starting it when needed). Dumps are taken on a thread of their own ("dump"), which sleeps
    /// with no timeout between requests. Cancel the task to stop; the thread ends with it, and the signal stays
    /// caught by the engine (counted, answered by nobody).
    ///
    /// Requests coalesce: the subscription keeps only the newest delivery not answered yet
    /// (``SignalBuffering/bufferingNewest(_:)`` of 1), so any number of requests that arrive during a dump get
    /// one more dump after it, not one each.
    public static func start(
        on signal: Signal = .sigusr2, write: @escaping @Sendable (String) -> Void = ThreadDump.printToStandardError
    ) throws(SignalError) -> Task<Void, Never> {
        try LifecycleThread.answering(signal, name: "dump") {
            do {
                write(try ThreadDump.capture().description)
            } catch {
                write("thread dump failed: \(error)")
            }
        }
    }

    /// Writes `text` and a newline to standard error in one `write` call per chunk.
    @Sendable public static func printToStandardError(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }

    /// "in system call N (name), pc 0x… symbol", from /proc/self/task/TID/syscall.
    static func describeSyscall(of tid: CInt) -> String {
        guard let text = readSmallFile("/proc/self/task/\(tid)/syscall") else { return "state unknown" }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard let first = fields.first else { return "state unknown" }
        if first == "running" { return "running on a CPU" }
        var symbolizer = Symbolizer()
        let pc = fields.last.flatMap { UInt64($0.dropFirst(2), radix: 16) }
        let frame = pc.map { symbolizer.frame($0).description } ?? "?"
        if first == "-1" { return "blocked outside a system call, pc \(frame)" }
        let number = Int(first) ?? -1
        let name = syscallNames[number].map { " (\($0))" } ?? ""
        return "in system call \(number)\(name), pc \(frame)"
    }

    /// Whether thread `tid` sleeps in rt_sigtimedwait now.
    static func inSigtimedwait(_ tid: CInt) -> Bool {
        readSmallFile("/proc/self/task/\(tid)/syscall")?.hasPrefix("128 ") == true
    }

    static let syscallNames: [Int: String] = [
        0: "read", 1: "write", 7: "poll", 23: "select", 35: "nanosleep", 61: "wait4", 128: "rt_sigtimedwait",
        130: "rt_sigsuspend", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait", 270: "pselect6",
        271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2",
    ]

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

/// Turns addresses into frames with dladdr, caching each address; demangles Swift symbols.
struct Symbolizer {
    private var cache: [UInt64: ThreadDump.Frame] = [:]

    mutating func frame(_ address: UInt64) -> ThreadDump.Frame {
        if let known = cache[address] { return known }
        var info = csignal_symbol()
        var frame = ThreadDump.Frame(address: address, symbol: nil, offset: 0, image: nil)
        if csignal_dump_symbolize(address, &info) != 0 {
            let image = Symbolizer.string(&info.image)
            frame.image = image.isEmpty ? nil : image
            let symbol = Symbolizer.string(&info.symbol)
            if !symbol.isEmpty, info.symbol_address != 0 {
                frame.symbol = Symbolizer.demangle(symbol)
                frame.offset = address &- info.symbol_address
            } else {
                frame.offset = address &- info.image_base
            }
        }
        cache[address] = frame
        return frame
    }

    static func string<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Demangles a Swift symbol with the runtime's demangler; other names come back unchanged.
    static func demangle(_ symbol: String) -> String {
        guard symbol.hasPrefix("$s") || symbol.hasPrefix("_$s") || symbol.hasPrefix("$S") else { return symbol }
        return symbol.withCString { mangled in
            guard let demangled = _swift_demangle(mangled, strlen(mangled), nil, nil, 0) else { return symbol }
            defer { free(demangled) }
            return String(cString: demangled)
        }
    }
}

/// The Swift runtime's demangler (exported by libswiftCore).
@_silgen_name("swift_demangle")
private func _swift_demangle(
    _ mangledName: UnsafePointer<CChar>?, _ mangledNameLength: Int, _ outputBuffer: UnsafeMutablePointer<CChar>?,
    _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?
