import ChildProcessTesting

#if canImport(Glibc)
import Glibc
#endif

/// Whether this machine lets the tests make a PID namespace, found out by trying: `unshare --pid --fork true`
/// (util-linux; needs root, or user namespaces).
enum PIDNamespace {
    /// util-linux's unshare, where Debian puts it.
    static let unshare: String = ["/usr/bin/unshare", "/bin/unshare"].first { access($0, X_OK) == 0 }
        ?? "/usr/bin/unshare"

    /// The arguments that make the command after them PID 1 of a new PID namespace, with its own /proc. With
    /// `--kill-child`, a test that kills unshare at its deadline takes the whole namespace down with it.
    static let arguments = ["--pid", "--fork", "--mount-proc", "--kill-child"]

    /// Whether `unshare --pid --fork true` works here.
    static let isAvailable: Bool = {
        guard access(unshare, X_OK) == 0,
              let trial = try? SpawnedProcess(unshare, ["--pid", "--fork", "true"], standardError: .mergedWithOutput),
              let exit = try? trial.finish(timeout: .seconds(30))
        else { return false }
        return exit == .exited(0)
    }()
}
