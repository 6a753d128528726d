import SignalCoreLifecycle
import Testing

@testable import signal_run

/// signal-run's hand-written command-line parser.
@Suite("signal-run's command line")
struct OptionsTests {
    @Test("defaults: forward to COMMAND only, no subreaper, no grace, quiet")
    func defaults() throws {
        let options = try Options.parse(["--", "nginx", "-g", "daemon off;"])
        #expect(options == Options(action: .run(["nginx", "-g", "daemon off;"])))
        #expect(options.forwardTo == .child)
        #expect(options.subreaper == false)
        #expect(options.grace == nil)
        #expect(options.verbose == false)
    }

    @Test("options end at -- or at the first argument that is not an option, as with tini")
    func endOfOptions() throws {
        #expect(try Options.parse(["sleep", "--verbose"]).action == .run(["sleep", "--verbose"]))
        #expect(try Options.parse(["-v", "--", "-weird-name"]).action == .run(["-weird-name"]))
        #expect(try Options.parse(["--", "--"]).action == .run(["--"]))
        #expect(try Options.parse(["-"]).action == .run(["-"]))
    }

    @Test("long options, with the value after them or joined with =")
    func longOptions() throws {
        let options = try Options.parse(["--forward-to", "group", "--subreaper", "--grace=2.5", "--verbose", "x"])
        var expected = Options(action: .run(["x"]))
        expected.forwardTo = .processGroup
        expected.subreaper = true
        expected.grace = .milliseconds(2500)
        expected.verbose = true
        #expect(options == expected)
        #expect(try Options.parse(["--forward-to=child", "--grace", "0", "x"]).grace == .zero)
        #expect(try Options.parse(["--forward-to=child", "-g", "x"]).forwardTo == .processGroup)
    }

    @Test("tini's flags, alone and grouped: -s, -g, -v, -h")
    func tiniFlags() throws {
        var expected = Options(action: .run(["x"]))
        expected.forwardTo = .processGroup
        expected.subreaper = true
        expected.verbose = true
        #expect(try Options.parse(["-sgv", "x"]) == expected)
        #expect(try Options.parse(["-s", "-g", "-v", "--", "x"]) == expected)
        #expect(try Options.parse(["-h"]).action == .help)
        #expect(try Options.parse(["--help", "x"]).action == .help)
    }

    @Test("refusals name what is wrong")
    func refusals() {
        #expect(throws: Options.Failure.missingCommand) { try Options.parse([String]()) }
        #expect(throws: Options.Failure.missingCommand) { try Options.parse(["-v", "--"]) }
        #expect(throws: Options.Failure.unknownOption("-e")) { try Options.parse(["-e", "143", "x"]) }
        #expect(throws: Options.Failure.unknownOption("--forward")) { try Options.parse(["--forward", "x"]) }
        #expect(throws: Options.Failure.missingValue("--grace")) { try Options.parse(["--grace"]) }
        #expect(throws: Options.Failure.badValue(option: "--grace", value: "-1", expected: "a number of seconds, 0 or more")) {
            try Options.parse(["--grace", "-1", "x"])
        }
        #expect(throws: Options.Failure.badValue(option: "--grace", value: "soon", expected: "a number of seconds, 0 or more")) {
            try Options.parse(["--grace=soon", "x"])
        }
        #expect(throws: Options.Failure.badValue(option: "--forward-to", value: "parent", expected: "child or group")) {
            try Options.parse(["--forward-to", "parent", "x"])
        }
        #expect(throws: Options.Failure.badValue(option: "--verbose", value: "yes", expected: "no value")) {
            try Options.parse(["--verbose=yes", "x"])
        }
    }

    @Test("signal-run forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH")
    func forwardedSignals() {
        #expect(Options.forwardedSignals == [.sigterm, .sigint, .sighup, .sigquit, .sigusr1, .sigusr2, .sigwinch])
    }
}
