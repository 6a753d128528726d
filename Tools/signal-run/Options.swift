import SignalCore
import SignalCoreLifecycle

/// signal-run's command line, parsed by hand so that the program needs no package besides SignalCore.
///
/// `signal-run [OPTIONS] [--] COMMAND [ARGS...]`. Options end at `--` or at the first argument that does not
/// start with `-` (as with tini, `--` is only needed when COMMAND itself starts with `-`). Short flags may be
/// grouped (`-sgv`); a long option's value may follow it or be joined with `=` (`--grace=2.5`).
struct Options: Equatable {
    /// What the command line asks for.
    enum Action: Equatable {
        /// Run COMMAND (never empty) with these arguments.
        case run([String])
        /// Print the help text.
        case help
    }

    /// The signals signal-run forwards to COMMAND.
    static let forwardedSignals: SignalSet = [.sigterm, .sigint, .sighup, .sigquit, .sigusr1, .sigusr2, .sigwinch]

    var action: Action
    /// Where forwarded signals go (`--forward-to`, `-g`). Default: COMMAND only, as tini does without `-g`.
    var forwardTo: ChildSupervisor.Configuration.ForwardTarget = .child
    /// Register as a child subreaper (`-s`, `--subreaper`).
    var subreaper = false
    /// SIGKILL to COMMAND's process group this long after a forwarded SIGTERM (`--grace`). nil: never.
    var grace: Duration? = nil
    /// Log forwarded signals and reaps to standard error (`-v`, `--verbose`).
    var verbose = false

    /// Why a command line was refused.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownOption(String)
        case missingValue(String)
        case badValue(option: String, value: String, expected: String)
        case missingCommand

        var description: String {
            switch self {
            case .unknownOption(let option): return "unknown option \(option)"
            case .missingValue(let option): return "\(option) needs a value"
            case .badValue(let option, let value, let expected): return "\(option) \(value): expected \(expected)"
            case .missingCommand: return "no COMMAND to run"
            }
        }
    }

    /// Parses the arguments after the program name.
    static func parse<C: Collection>(_ arguments: C) throws(Failure) -> Options where C.Element == String {
        var options = Options(action: .help)
        var rest = ArraySlice(arguments)
        while let argument = rest.first {
            if argument == "--" {
                rest.removeFirst()
                break
            }
            if !argument.hasPrefix("-") || argument == "-" { break }
            rest.removeFirst()
            if argument.hasPrefix("--") {
                let (name, joined) = splitJoinedValue(argument)
                func value() throws(Failure) -> String {
                    if let joined { return joined }
                    guard let next = rest.popFirst() else { throw .missingValue(name) }
                    return next
                }
                if let joined, ["--help", "--subreaper", "--verbose"].contains(name) {
                    throw .badValue(option: name, value: joined, expected: "no value")
                }
                switch name {
                case "--help": return Options(action: .help)
                case "--subreaper": options.subreaper = true
                case "--verbose": options.verbose = true
                case "--forward-to":
                    let target = try value()
                    switch target {
                    case "child": options.forwardTo = .child
                    case "group": options.forwardTo = .processGroup
                    default: throw .badValue(option: name, value: target, expected: "child or group")
                    }
                case "--grace":
                    let text = try value()
                    guard let seconds = Double(text), seconds.isFinite, seconds >= 0, seconds <= 365 * 86_400 else {
                        throw .badValue(option: name, value: text, expected: "a number of seconds, 0 or more")
                    }
                    options.grace = .nanoseconds(Int64((seconds * 1e9).rounded()))
                default:
                    throw .unknownOption(name)
                }
            } else {
                for flag in argument.dropFirst() {
                    switch flag {
                    case "h": return Options(action: .help)
                    case "s": options.subreaper = true
                    case "g": options.forwardTo = .processGroup
                    case "v": options.verbose = true
                    default: throw .unknownOption("-\(flag)")
                    }
                }
            }
        }
        guard !rest.isEmpty else { throw .missingCommand }
        options.action = .run(Array(rest))
        return options
    }

    /// "--grace=2" → ("--grace", "2"); "--grace" → ("--grace", nil).
    private static func splitJoinedValue(_ argument: String) -> (String, String?) {
        guard let equals = argument.firstIndex(of: "=") else { return (argument, nil) }
        return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
    }

    static let usage = "Usage: signal-run [OPTIONS] [--] COMMAND [ARGS...]"

    static let help = """
        \(usage)

        Runs COMMAND in a process group of its own with a clean signal state (empty mask, default actions),
        forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it, reaps every child that
        ends (orphans too, when signal-run is PID 1 or a subreaper) and exits with COMMAND's exit status, or with
        128+n when signal n ended COMMAND. Made to be a container's PID 1: ENTRYPOINT ["signal-run", "--"].

        Options:
          --forward-to child|group  Send forwarded signals to COMMAND only (default, as tini does) or to its
                                    whole process group (as tini -g does).
          -g                        Same as --forward-to group.
          -s, --subreaper           Register as a child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphaned
                                    descendants are reparented to signal-run and reaped even when it is not
                                    PID 1.
          --grace SECONDS           After forwarding SIGTERM, wait SECONDS (fractions allowed), then send
                                    SIGKILL to COMMAND's process group. Default: never.
          -v, --verbose             Log every forwarded signal and every reaped child to standard error.
          -h, --help                Show this help.

        Exit status: COMMAND's; 128+n when signal n ended COMMAND; 126 when COMMAND cannot be executed; 127 when
        it is not found; 64 for a bad command line; 1 when signal-run itself fails.
        """
}
