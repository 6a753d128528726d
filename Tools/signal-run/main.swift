// signal-run: a small init for containers. Runs COMMAND in its own process group with a clean signal state,
// forwards the usual termination and control signals to it, reaps every child (orphans too as PID 1 or with
// --subreaper) and exits with COMMAND's status. See Options.swift for the command line.
import SignalCore
import SignalCoreLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let options: Options
do {
    options = try Options.parse(CommandLine.arguments.dropFirst())
} catch {
    Log.write("\(error)\n\(Options.usage) (signal-run --help for more)")
    exit(64)
}

guard case .run(let command) = options.action else {
    print(Options.help)
    exit(0)
}

if options.subreaper {
    do {
        try ChildSupervisor.setChildSubreaper()
    } catch {
        Log.write("cannot become a child subreaper: \(error)")
        exit(1)
    }
}
if options.verbose, getpid() != 1, !options.subreaper {
    Log.write("not PID 1 and not a subreaper (--subreaper): orphans of COMMAND's children are not reparented here")
}

// signal-run spawns no child but COMMAND, so reaping every child takes nothing from anyone: as PID 1 or a
// subreaper that is every orphan in the tree, otherwise COMMAND alone.
let verbose = options.verbose
let supervisor = ChildSupervisor(
    configuration: .init(
        reaping: .allChildren, forwardedSignals: Options.forwardedSignals, forwardTarget: options.forwardTo,
        killGrace: options.grace),
    observer: { event in if verbose { Log.write(Log.describe(event)) } }
)
do {
    try supervisor.start()  // before COMMAND starts, so that no signal meant for it is missed
} catch {
    Log.write("cannot watch signals: \(error)")
    exit(1)
}

// In a terminal's foreground (an interactive `docker run -it`), COMMAND's group takes the terminal over, so that
// it can read it and gets Ctrl-C from the terminal itself.
let terminal: CInt? = isatty(0) == 1 && tcgetpgrp(0) == getpgrp() ? 0 : nil
let child: SupervisedChild
do {
    child = try supervisor.spawn(command[0], arguments: Array(command.dropFirst()), foregroundTerminal: terminal)
} catch {
    Log.write("cannot run \(command[0]): \(error)")
    switch error.errno {
    case ENOENT: exit(127)
    case EACCES, ENOEXEC, EISDIR: exit(126)
    default: exit(1)
    }
}
if verbose { Log.write("started pid \(child.pid) in process group \(child.pid): \(command.joined(separator: " "))") }

// The main thread blocks on a condition variable: signal-run runs no async code outside the supervisor's own
// thread, so libdispatch's thread pool (and its once-a-second timer) never starts.
var ended: ChildExit? = nil
while ended == nil {
    ended = child.waitForExit(timeout: .seconds(365 * 86_400))
    if ended == nil, !supervisor.isRunning {
        Log.write("lost track of pid \(child.pid)")
        exit(1)
    }
}
let status = ended!.shellStatus
if verbose { Log.write("COMMAND ended; exiting with status \(status)") }
exit(status)
