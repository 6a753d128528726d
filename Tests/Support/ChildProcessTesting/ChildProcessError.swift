/// Why talking to a child process failed. Every case that comes from a wait carries the output read so far.
public enum ChildProcessError: Error, CustomStringConvertible {
    /// A system call failed with `errno`.
    case system(call: String, errno: CInt)
    /// No line matched `what` before the output ended or the deadline passed.
    case missingLine(String, output: [String], errorOutput: [String])
    /// The process did not end in time (it was killed).
    case timedOut(output: [String], errorOutput: [String])

    public var description: String {
        switch self {
        case .system(let call, let errno): return "\(call) failed (errno: \(errno))"
        case .missingLine(let what, let output, let errorOutput):
            return "no line \(what); output:\n" + Self.transcript(output, errorOutput)
        case .timedOut(let output, let errorOutput):
            return "child process timed out; output:\n" + Self.transcript(output, errorOutput)
        }
    }

    private static func transcript(_ output: [String], _ errorOutput: [String]) -> String {
        let main = output.joined(separator: "\n")
        return errorOutput.isEmpty ? main : main + "\nstderr:\n" + errorOutput.joined(separator: "\n")
    }
}
