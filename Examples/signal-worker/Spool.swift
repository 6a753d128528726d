import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A job claimed from the spool.
struct Job: Sendable {
    let id: String
    var fileName: String { id + ".job" }
}

/// Why a spool operation failed: the call, the path and errno.
struct SpoolError: Error, CustomStringConvertible {
    let call: String
    let path: String
    let code: CInt
    var description: String { "\(call) \(path): \(String(cString: strerror(code))) (errno: \(code))" }
}

/// The spool directory: `incoming/` → `processing/` → `done/`.
///
/// Every move is a `rename` inside one file system, so it is atomic: a job is in exactly one directory at any
/// moment, even across a SIGKILL. A worker claims a job by renaming it from incoming/ to processing/ (the rename
/// that succeeds wins). Finishing writes `done/ID.result` (to a temporary name, fsync, rename), then removes
/// `processing/ID.job`. At start, ``recover()`` puts whatever is left in processing/ back into incoming/, or
/// just removes it if its result already exists (the process died between the two steps), so no job is lost
/// and none is done twice.
final class Spool: Sendable {
    let root: String
    var incoming: String { root + "/incoming" }
    var processing: String { root + "/processing" }
    var done: String { root + "/done" }

    /// Names seen in incoming/ that nobody claimed yet, oldest first (reversed: popLast takes the oldest).
    private let candidates = Mutex<[String]>([])

    init(root: String) { self.root = root }

    /// Creates the three directories if needed.
    func prepare() throws(SpoolError) {
        for dir in [incoming, processing, done] where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw SpoolError(call: "mkdir", path: dir, code: errno)
        }
    }

    /// Moves interrupted jobs back to incoming/. Returns (requeued, already done).
    func recover() throws(SpoolError) -> (requeued: [String], alreadyDone: [String]) {
        var requeued: [String] = [], alreadyDone: [String] = []
        for name in try list(processing, suffix: ".job") {
            let id = String(name.dropLast(4))
            if access(done + "/" + id + ".result", F_OK) == 0 {
                if unlink(processing + "/" + name) != 0 { throw SpoolError(call: "unlink", path: name, code: errno) }
                alreadyDone.append(id)
            } else {
                if rename(processing + "/" + name, incoming + "/" + name) != 0 {
                    throw SpoolError(call: "rename", path: processing + "/" + name, code: errno)
                }
                requeued.append(id)
            }
        }
        for name in try list(done, suffix: ".tmp") { unlink(done + "/" + name) }
        syncDirectory(processing)
        syncDirectory(incoming)
        return (requeued, alreadyDone)
    }

    /// Adds `count` generated jobs, numbered after the highest id in any of the three directories.
    func generate(_ count: Int) throws(SpoolError) -> ClosedRange<Int>? {
        guard count > 0 else { return nil }
        var highest = 0
        for (dir, suffix) in [(incoming, ".job"), (processing, ".job"), (done, ".result")] {
            for name in try list(dir, suffix: suffix) {
                if let n = Int(name.dropFirst(4).dropLast(suffix.count)), name.hasPrefix("job-") { highest = max(highest, n) }
            }
        }
        let range = (highest + 1)...(highest + count)
        for n in range {
            let id = Spool.id(n)
            let temporary = root + "/." + id + ".job.tmp"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw SpoolError(call: "open", path: temporary, code: errno) }
            writeAll(fd, "{\"id\":\"\(id)\",\"payload\":\"generated job \(n): sum the digits of \(n &* 2_654_435_761 % 1_000_000_007)\"}\n")
            close(fd)
            if rename(temporary, incoming + "/" + id + ".job") != 0 { throw SpoolError(call: "rename", path: temporary, code: errno) }
        }
        syncDirectory(incoming)
        return range
    }

    static func id(_ n: Int) -> String {
        let digits = String(n)
        return "job-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// Claims the oldest waiting job, or returns nil when incoming/ is empty.
    func claim() -> Job? {
        candidates.withLock { names in
            for attempt in 0..<2 {
                if names.isEmpty {
                    if attempt == 1 { return nil }
                    names = ((try? list(incoming, suffix: ".job")) ?? []).reversed()
                }
                while let name = names.popLast() {
                    if rename(incoming + "/" + name, processing + "/" + name) == 0 {
                        return Job(id: String(name.dropLast(4)))
                    }
                    // ENOENT: someone else (another process on the same spool) took it first.
                }
            }
            return nil
        }
    }

    /// Jobs waiting in incoming/ now.
    func waitingCount() -> Int { ((try? list(incoming, suffix: ".job")) ?? []).count }

    /// Jobs in processing/ now.
    func processingCount() -> Int { ((try? list(processing, suffix: ".job")) ?? []).count }

    /// The job file's content.
    func payload(of job: Job) -> String {
        let fd = open(processing + "/" + job.fileName, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    /// Writes the result durably, then removes the job from processing/.
    func complete(_ job: Job, result: String) throws(SpoolError) {
        let temporary = done + "/" + job.id + ".result.tmp"
        let final = done + "/" + job.id + ".result"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SpoolError(call: "open", path: temporary, code: errno) }
        writeAll(fd, result)
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw SpoolError(call: "fsync", path: temporary, code: code)
        }
        close(fd)
        if rename(temporary, final) != 0 { throw SpoolError(call: "rename", path: temporary, code: errno) }
        syncDirectory(done)
        if unlink(processing + "/" + job.fileName) != 0 {
            throw SpoolError(call: "unlink", path: processing + "/" + job.fileName, code: errno)
        }
    }

    /// Puts an abandoned job back into incoming/ (the deadline cancelled it).
    func requeue(_ job: Job) throws(SpoolError) {
        if rename(processing + "/" + job.fileName, incoming + "/" + job.fileName) != 0 {
            throw SpoolError(call: "rename", path: processing + "/" + job.fileName, code: errno)
        }
        syncDirectory(incoming)
    }

    /// Names in `dir` ending in `suffix`, sorted.
    func list(_ dir: String, suffix: String) throws(SpoolError) -> [String] {
        guard let handle = opendir(dir) else { throw SpoolError(call: "opendir", path: dir, code: errno) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(suffix), !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    /// fsync on a directory makes the renames in it durable.
    private func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
