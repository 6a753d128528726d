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
