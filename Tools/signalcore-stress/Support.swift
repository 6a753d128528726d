#if canImport(Glibc)
import Glibc
#endif

func monotonicNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Writes a line to standard error without stdio (Swift 6 will not touch C's `stderr` global).
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// Reads one line from stdin, waiting at most until `deadline`. Nil on EOF or timeout.
func readStdinLine(deadline: Int64) -> String? {
    var bytes: [UInt8] = []
    while true {
        let left = deadline - monotonicNow()
        if left <= 0 { return nil }
        var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, CInt(min(left / 1_000_000 + 1, 1000)))
        if r <= 0 { continue }
        var byte: UInt8 = 0
        if read(0, &byte, 1) != 1 { return nil }
        if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
}
