import CSignalShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Child processes of a process that runs the engine.
///
/// While the engine runs, every thread blocks the watched signals, and a new process inherits the mask of the
/// thread that creates it. A program started that way would ignore `kill -TERM` forever (the signal stays
/// pending, blocked). Handlers are reset to the default action by `exec`, but the mask is not, and `SIG_IGN`
/// is not either. Use one of these:
///
/// - `posix_spawn`: ``configureSpawnAttributes(_:)`` sets `POSIX_SPAWN_SETSIGMASK` (empty mask) and
///   `POSIX_SPAWN_SETSIGDEF` (default action for every catchable signal).
/// - APIs that spawn with the calling thread's mask and offer no attributes (Foundation's `Process`): run
///   them inside ``withWatchedSignalsUnblocked(_:)``.
/// - `fork()` without `exec`: call ``SignalEngine/prepareChildProcess()`` first thing in the child.
///
/// swift-subprocess resets the mask and dispositions in the child by itself.
public enum ChildProcessSignals {
    /// Sets `attributes` so that the spawned program starts with an empty signal mask and the default action
    /// for every signal that can be caught, whatever the spawning thread has. Keeps the other flags.
    ///
    /// The corresponding C functions are `posix_spawnattr_setsigmask`, `posix_spawnattr_setsigdefault` and
    /// `posix_spawnattr_setflags`.
    public static func configureSpawnAttributes(_ attributes: inout posix_spawnattr_t) throws(SignalError) {
        var empty = sigset_t()
        sigemptyset(&empty)
        // Every catchable signal. glibc skips SIGKILL and SIGSTOP itself, but other libcs pass them to
        // sigaction, which refuses them: leave them out.
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var flags: Int16 = 0
        var err = posix_spawnattr_getflags(&attributes, &flags)
        if err != 0 { throw .system(call: "posix_spawnattr_getflags", errno: err) }
        err = posix_spawnattr_setsigmask(&attributes, &empty)
        if err != 0 { throw .system(call: "posix_spawnattr_setsigmask", errno: err) }
        err = posix_spawnattr_setsigdefault(&attributes, &defaults)
        if err != 0 { throw .system(call: "posix_spawnattr_setsigdefault", errno: err) }
        err = posix_spawnattr_setflags(&attributes, flags | Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        if err != 0 { throw .system(call: "posix_spawnattr_setflags", errno: err) }
    }

    /// Runs `body` with the engine's watched signals unblocked in the calling thread, then blocks again those
    /// that are still watched. A process that `body` spawns inherits a mask without them.
    ///
    /// Safe while the engine runs: a watched signal that arrives meanwhile runs the engine's fallback handler
    /// on this thread and is recorded (route ``SignalEvent/Route/handler``), never the default action; the
    /// handler blocks it again in this thread. Meanwhile this thread takes signals beside the engine, so keep
    /// `body` short. Meant for Foundation's `Process.run()`, which hands the calling thread's mask to the child.
    /// The corresponding C function is `pthread_sigmask`.
    public static func withWatchedSignalsUnblocked<Result, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var unblock = sigset_t()
        var previous = sigset_t()
        sigemptyset(&unblock)
        pthread_sigmask(SIG_BLOCK, nil, &previous)
        let watched = csignal_engine_watched() & ~csignal_thread_directed_class()
        var unblocked: [CInt] = []
        for signo in 1...CInt(CSIGNAL_MAX_SIGNO) where watched & (1 << UInt64(signo - 1)) != 0 {
            if sigismember(&previous, signo) == 1 {
                sigaddset(&unblock, signo)
                unblocked.append(signo)
            }
        }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        defer {
            // Only what is still watched: a signal unwatched meanwhile was unblocked everywhere on purpose.
            let still = csignal_engine_watched()
            var reblock = sigset_t()
            sigemptyset(&reblock)
            for signo in unblocked where still & (1 << UInt64(signo - 1)) != 0 { sigaddset(&reblock, signo) }
            pthread_sigmask(SIG_BLOCK, &reblock, nil)
        }
        return try body()
    }
}

extension SignalEngine {
    /// Call first thing in the child of a `fork()` made while the engine runs (not needed before `exec` if the
    /// exec'd program resets its mask, and not needed with `posix_spawn`).
    ///
    /// The child has a copy of the engine's memory but only the forking thread: no wait thread. This restores
    /// in the child what ``stop()`` restores (each watched signal's previous disposition, the internal
    /// signal's disposition, and the calling thread's mask for the watched signals), so that signals sent to
    /// the child meet their ordinary dispositions. Afterwards ``isRunning`` is false and ``waitThreadID`` nil
    /// in the child; ``counts(for:)`` still shows the counts at the fork. The child cannot start the engine
    /// again (the Swift side's state was copied as "running", and its lock may have been held by a thread
    /// that does not exist in the child): exec a program instead.
    ///
    /// Async-signal-safe, as code between `fork` and `exec` must be: it calls `sigaction`, `sigprocmask` and
    /// `getpid`, and stores atomics. Throws ``SignalError/notInForkedChild`` when called in the process that
    /// started the engine, and ``SignalError/system(call:errno:)`` when `sigaction` or `sigprocmask` fails.
    public func prepareChildProcess() throws(SignalError) {
        let err = csignal_engine_prepare_child()
        if err == EINVAL { throw .notInForkedChild }
        if err != 0 { throw .system(call: "sigaction", errno: err) }
    }
}
