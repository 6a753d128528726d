// CSignalVerifySupport: C helpers for SignalCore's safety scenarios (SignalCoreVerifyHelper). Test code only.
//
// Some scenarios need C because Swift cannot (or must not) do the thing: run code between fork() and exec()
// (only async-signal-safe calls are allowed there), install a plain counting sigaction handler, or create
// threads from C at full speed while the engine spreads its mask.
#ifndef CSIGNAL_VERIFY_SUPPORT_H
#define CSIGNAL_VERIFY_SUPPORT_H

#ifdef __linux__

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

// MARK: - A foreign handler that counts (the "restored disposition" of the race scenarios)

/// Installs an SA_SIGINFO handler for `signo` that counts each run and the sum of the si_value ints.
/// Returns 0 or errno. NOT SAFE: setup only.
int csv_install_counting_handler(int signo);
/// Runs of the counting handler for `signo`. ASYNC-SIGNAL-SAFE.
uint64_t csv_counting_hits(int signo);
/// Is the counting handler installed for `signo`?
bool csv_is_counting_handler(int signo);

// MARK: - A sender thread (sigqueue to a process, retrying EAGAIN)

typedef struct csv_flood csv_flood;
/// Starts a thread that queues `count` signals `signo` to `pid` with values 1...count, retrying EAGAIN (the
/// kernel's queue is full) until `max_seconds` have passed in total. Returns NULL and sets errno on failure.
csv_flood *csv_flood_start(pid_t pid, int signo, uint64_t count, int max_seconds);
/// Same, paced: after every `burst` sends the sender sleeps `pause_ns`. An unpaced sender with no end can keep
/// the kernel's queue full forever, and a thread that has the signal unblocked then runs handler after handler
/// without ever getting back to its own code (each return to user space delivers the next one).
csv_flood *csv_flood_start_paced(pid_t pid, int signo, uint64_t count, int max_seconds, uint32_t burst,
                                 long pause_ns);
/// Signals queued so far (sigqueue returned 0).
uint64_t csv_flood_sent(const csv_flood *flood);
/// EAGAIN results seen so far.
uint64_t csv_flood_eagain(const csv_flood *flood);
/// Asks the sender to stop after its current send (for floods that must outlast what the main thread does).
void csv_flood_stop(csv_flood *flood);
/// Waits for the sender to finish; returns the number queued and frees it.
uint64_t csv_flood_join(csv_flood *flood, uint64_t *eagain);

// MARK: - A thread storm (threads created from C while the engine starts)

/// Starts a creator thread that keeps creating threads (each parks until csv_storm_release) until
/// csv_storm_stop or `max_threads` exist. Returns 0 or errno.
int csv_storm_start(int max_threads);
/// Stops creating; returns how many threads were created.
int csv_storm_stop(void);
/// Lets the parked threads exit and joins them (and the creator).
void csv_storm_release(void);

// MARK: - fork

/// What a forked child saw, written by the child through a pipe (plain ints, no stdio in the child).
typedef struct csv_child_report {
    int32_t prepare_result;      ///< csignal_engine_prepare_child()'s result, or -1 when not called
    int32_t running_before;      ///< csignal_engine_running() in the child before prepare
    int32_t running_after;
    int32_t waiter_tid_after;
    uint64_t blocked_before;     ///< the child's mask (bit n-1 = signal n) before prepare
    uint64_t blocked_after;
    int32_t disposition_after;   ///< csignal_disposition(report_signo) after prepare (CSIGNAL_DISP_*)
    int32_t thread_count;        ///< entries in /proc/self/task (the child has one thread)
    uint64_t delivered_at_fork;  ///< csignal_delivered(report_signo) in the child
} csv_child_report;

/// What the child does after it wrote its report.
enum {
    CSV_CHILD_EXIT = 0,        ///< _exit(0)
    CSV_CHILD_EXEC_SLEEP = 1,  ///< execv("/bin/sleep", "60"): the parent inspects it and kills it
    CSV_CHILD_WAIT_KILL = 2,   ///< pause() forever: the parent sends report_signo and expects death by it
};

/// Forks. The child optionally calls csignal_engine_prepare_child(), writes a csv_child_report to a pipe,
/// then does `then`. Returns the child's pid and the read end of the pipe in *report_fd, or -errno.
pid_t csv_fork_child(bool prepare, int report_signo, int then, int *report_fd);
/// Reads the child's report (poll with a timeout). Returns 0 or an errno value.
int csv_read_child_report(int fd, csv_child_report *out, int timeout_ms);

// MARK: - Small things Swift wants from C

/// SigBlk / SigIgn / SigCgt of a process or thread, from /proc/<pid>/status (tid = 0: the process).
/// Returns 0 or -errno.
int csv_proc_sigmasks(pid_t pid, uint64_t *blocked, uint64_t *ignored, uint64_t *caught);
/// Entries in /proc/self/task and /proc/self/fd. -errno on failure.
int csv_count_threads(void);
int csv_count_fds(void);
/// Sets RLIMIT_SIGPENDING's soft limit. Returns 0 or errno.
int csv_set_sigpending_limit(uint64_t limit);
/// sigqueue to one thread of this process (rt_tgsigqueueinfo); returns 0 or errno (EAGAIN when full).
int csv_queue_to_thread(pid_t tid, int signo, int value);

#endif // __linux__
#endif
