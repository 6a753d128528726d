#if CommandLineTools
import ArgumentParser

/// `signalcore-stress`: fires many signals at a process running SignalCore and checks its accounting.
@main
struct Stress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signalcore-stress",
        abstract: "Fire many signals at a SignalCore process from several senders and check every delivery.",
        subcommands: [Run.self, Target.self, Sender.self],
        defaultSubcommand: Run.self)
}
#else

#if canImport(Glibc)
import Glibc
#endif

/// Built without the `CommandLineTools` trait: swift-argument-parser is not part of this build.
@main
struct Stress {
    static func main() {
        printError("signalcore-stress: built without the CommandLineTools trait (swift-argument-parser)")
        exit(64)
    }
}
#endif
