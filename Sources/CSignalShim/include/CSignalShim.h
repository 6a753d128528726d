// CSignalShim: the C half of SignalCore.
//
// Everything that can run in signal-handler context lives in C, behind this header. Swift sees plain structs
// and functions only: Swift 6 cannot import `_Atomic` fields, so counters are read through the `static inline`
// accessors below, which compile to one plain load on x86_64 and arm64.
//
// Each function says where it may run:
//   ASYNC-SIGNAL-SAFE          may run in a signal handler (and anywhere else);
//   NOT SAFE: setup only       start/stop/watch paths, called with the engine's setup lock held (Swift side);
//   NOT SAFE: any thread       ordinary thread context, never a handler.
#ifndef CSIGNAL_SHIM_H
#define CSIGNAL_SHIM_H

#ifdef __linux__

#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Signals are numbered 1...64 on Linux (_NSIG - 1). Slot 0 of the per-signal tables is unused.
#define CSIGNAL_MAX_SIGNO 64
#define CSIGNAL_SLOTS 65

/// Largest record ring the engine can be started with (records, a power of two).
#define CSIGNAL_RING_MAX_CAPACITY 65536

/// Which route recorded a delivery.
enum {
    CSIGNAL_ROUTE_WAITER = 0,   ///< dequeued by the wait thread's sigwaitinfo
    CSIGNAL_ROUTE_HANDLER = 1,  ///< ran the fallback sigaction handler on some other thread
};

/// One delivery, as the kernel described it in its siginfo_t.
typedef struct csignal_record {
    uint64_t sequence;      ///< 1, 2, 3, ... in ring order across all signals
    int64_t time_ns;        ///< CLOCK_MONOTONIC when the recorder saw it
    uint64_t value_ptr;     ///< si_value.sival_ptr
    int32_t signo;
    int32_t code;           ///< si_code (SI_USER, SI_QUEUE, SI_TKILL, SI_KERNEL, ...)
    int32_t pid;            ///< si_pid of the sender
    uint32_t uid;           ///< si_uid of the sender
    int32_t value_int;      ///< si_value.sival_int
    int32_t route;          ///< CSIGNAL_ROUTE_*
    int32_t tid;            ///< thread that recorded it (the wait thread, or the interrupted thread)
    int32_t reserved;
} csignal_record;

/// Per-signal counters. Every field only ever grows while the process lives.
typedef struct csignal_counts {
    uint64_t delivered;     ///< every delivery the kernel made to us (= via_waiter + via_handler)
    uint64_t via_waiter;
    uint64_t via_handler;
    uint64_t dropped;       ///< deliveries counted but not recorded because the ring was full
} csignal_counts;

/// Counter storage, one cache line per signal so that recorders on different signals never share a line.
/// Declared here only for the inline accessors below; Swift never touches it directly.
typedef struct csignal_counter_line {
    uint64_t delivered;
    uint64_t via_waiter;
    uint64_t via_handler;
    uint64_t dropped;
    uint64_t pad[4];
} csignal_counter_line;
extern csignal_counter_line csignal_counter_table[128];

/// Deliveries of `signo` so far. One acquire load (a plain `mov` on x86_64): the poll path. Acquire pairs with
/// the recorder's release increment, so a poller that sees N deliveries finds their records in the ring (or
/// counted as dropped). Out-of-range numbers read a slot that never counts (index masked to the table, slots
/// 65...127 stay 0). ASYNC-SIGNAL-SAFE.
static inline uint64_t csignal_delivered(int signo) {
    return __atomic_load_n(&csignal_counter_table[(unsigned)signo & 127u].delivered, __ATOMIC_ACQUIRE);
}

/// All counters of one signal. Each field is read atomically; the four are not one snapshot.
/// ASYNC-SIGNAL-SAFE.
static inline csignal_counts csignal_get_counts(int signo) {
    const csignal_counter_line *line = &csignal_counter_table[(unsigned)signo & 127u];
    csignal_counts c;
    c.delivered = __atomic_load_n(&line->delivered, __ATOMIC_RELAXED);
    c.via_waiter = __atomic_load_n(&line->via_waiter, __ATOMIC_RELAXED);
    c.via_handler = __atomic_load_n(&line->via_handler, __ATOMIC_RELAXED);
    c.dropped = __atomic_load_n(&line->dropped, __ATOMIC_RELAXED);
    return c;
}

// MARK: - Signal numbers (libc's view at run time)

/// SIGRTMIN and SIGRTMAX as the running glibc defines them (glibc keeps 32 and 33 for itself).
int csignal_rtmin(void);
int csignal_rtmax(void);
/// The engine's own real-time signal (mask spreading and waking the wait thread): SIGRTMAX.
int csignal_internal_signo(void);

// MARK: - Engine (NOT SAFE: setup only)

/// Called on the wait thread (ordinary thread context, never a handler) after it recorded one or more
/// deliveries, or after the handler route asked it to look. `context` is what csignal_engine_start got.
typedef void (*csignal_notify_fn)(void *context);

typedef struct csignal_start_options {
    uint32_t ring_capacity;       ///< power of two, 2...CSIGNAL_RING_MAX_CAPACITY
    uint32_t batch_limit;         ///< deliveries dequeued per wake-up before notifying (>= 1)
    csignal_notify_fn notify;     ///< may be NULL: then nobody is told, records wait for csignal_ring_pop
    void *notify_context;
} csignal_start_options;

/// Starts the engine: installs the internal signal's handler, creates the wait thread (named "signalcore").
/// Watches nothing yet: follow with csignal_engine_watch. Returns 0, or an errno value with *failed_call set.
int csignal_engine_start(const csignal_start_options *options, const char **failed_call);

/// Adds signals (bit n-1 = signal n) to the watched set: installs the fallback handler (saving the previous
/// disposition), blocks them in every thread, tells the wait thread. Returns 0 or an errno value.
int csignal_engine_watch(uint64_t mask, const char **failed_call);

/// Removes signals: restores each previous disposition, takes them out of the wait set, unblocks them in
/// every thread (a delivery still pending then meets the restored disposition). Returns 0 or an errno value.
int csignal_engine_unwatch(uint64_t mask, const char **failed_call);

/// Unwatches everything, stops and joins the wait thread, restores the internal signal's disposition.
int csignal_engine_stop(const char **failed_call);

bool csignal_engine_running(void);

/// For the child of a fork() made while the engine runs, before it does anything else. The child has one thread
/// and no wait thread, but inherited the engine's dispositions and the forking thread's mask, so watched signals
/// would stay blocked and pending forever. This puts back, in the child only, what stop would: each watched
/// signal's previous disposition and the internal signal's, and unblocks in the calling thread the watched
/// signals that were not blocked before they were watched. The engine then reports not running; the counters
/// keep the values they had at the fork. Returns 0 (also when the engine was not running), or EINVAL when
/// called in the process that started the engine (not a forked child).
/// ASYNC-SIGNAL-SAFE: sigaction, sigprocmask, getpid and atomic stores only (allowed between fork and exec).
int csignal_engine_prepare_child(void);
uint64_t csignal_engine_watched(void);
/// Kernel thread id of the wait thread, or 0.
pid_t csignal_engine_waiter_tid(void);
/// Whether the calling thread is the engine's wait thread (a thread-local flag: no system call).
bool csignal_on_wait_thread(void);
/// Asks the wait thread to call the notify function soon (coalesced with other requests).
/// ASYNC-SIGNAL-SAFE; callable from any thread.
void csignal_engine_poke(void);

// MARK: - Borrowing the wait role (NOT SAFE: any thread but the wait thread)

/// Makes the calling thread the one that sleeps in sigwaitinfo (the wait thread parks meanwhile), so that the
/// kernel wakes this thread directly. Returns 0, EBUSY (another thread borrows it, or setup is running), ESRCH
/// (engine stopped), EDEADLK (this thread holds the role already) or ETIMEDOUT (the wait thread did not park in
/// time). On success, follow with csignal_borrow_wait calls and always csignal_borrow_end.
int csignal_borrow_begin(int64_t timeout_ns);
/// One batch as the role holder: waits up to `timeout_ns` for deliveries and records them; *notify says whether
/// the notify work (draining the ring) is due. The first delivery of a signal in `direct_mask` ends the batch:
/// *matched is set and its record is copied to `direct_record` (it is in the ring too, with that sequence
/// number, or counted as dropped with sequence 0). Returns 0, ETIMEDOUT (nothing arrived), or ECANCELED (setup
/// needs the role back: end the borrow now).
int csignal_borrow_wait(int64_t timeout_ns, uint64_t direct_mask, csignal_record *direct_record, bool *matched,
                        bool *notify);
/// Gives the role back to the wait thread.
void csignal_borrow_end(void);
/// Gives the role back lazily, after returning an event: for the next millisecond (the lease) the role stays
/// with this thread without anyone waiting in sigwaitinfo, so that a caller that comes straight back for the
/// next event takes it again without waking the wait thread twice. When the lease runs out, or another thread,
/// setup or a handler-route delivery needs the role, the wait thread takes it back. Deliveries meanwhile wait in
/// the kernel (real-time ones queued, standard ones coalesced); none is lost.
void csignal_borrow_end_lazily(void);

// MARK: - Mask spreading (NOT SAFE: setup only)

typedef struct csignal_spread_result {
    uint32_t passes;           ///< passes over /proc/self/task
    uint32_t signalled;        ///< threads that were asked to change their mask
    uint32_t unreachable;      ///< threads that block the internal signal and lack part of the change
    uint32_t timed_out;        ///< threads that did not answer in time (usually: exited meanwhile)
} csignal_spread_result;

/// Blocks `block_mask` and unblocks `unblock_mask` in every thread of the process but the wait thread.
int csignal_spread_mask(uint64_t block_mask, uint64_t unblock_mask, csignal_spread_result *result);
/// Result of the most recent spread done by watch/unwatch/stop.
csignal_spread_result csignal_last_spread(void);

// MARK: - Records

/// Takes up to `max` records out of the ring, oldest first. Returns how many.
/// Single consumer: callers serialise (the Swift engine holds its lock). NOT SAFE: any thread.
uint32_t csignal_ring_pop(csignal_record *out, uint32_t max);
/// Records written but not yet popped (approximate while producers run). ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_pending(void);
/// Records dropped because the ring was full, all signals together. ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_dropped_total(void);

// MARK: - Audit (NOT SAFE: any thread)

typedef struct csignal_thread_report {
    int32_t tid;
    int32_t is_waiter;
    uint64_t blocked;          ///< SigBlk, bit n-1 = signal n
    uint64_t voluntary_switches;
    char name[20];
} csignal_thread_report;

/// Reads /proc/self/task/*/status. Fills up to `max` reports; returns the number of threads found
/// (which may exceed `max`), or -errno.
int csignal_audit(csignal_thread_report *out, int max);
/// Reads one thread's status. Returns 0 or -errno.
int csignal_thread_status(pid_t tid, csignal_thread_report *out);

// MARK: - Dispositions and sending (NOT SAFE: any thread)

enum { CSIGNAL_DISP_DEFAULT = 0, CSIGNAL_DISP_IGNORE = 1, CSIGNAL_DISP_HANDLER = 2 };

/// Current disposition of `signo`: CSIGNAL_DISP_*, or -errno.
int csignal_disposition(int signo);
/// Is the handler installed for `signo` SignalCore's fallback handler?
bool csignal_is_engine_handler(int signo);
/// Sends to one thread of this process (tgkill). Returns 0 or errno.
int csignal_tgkill(pid_t tid, int signo);
/// Queues `signo` with `value` to one thread of this process (rt_tgsigqueueinfo). Returns 0 or errno.
int csignal_tg_sigqueue(pid_t tid, int signo, int value);
pid_t csignal_gettid(void);

// MARK: - Thread dump (dump.c)

/// Threads one dump can cover, and frames kept per thread.
#define CSIGNAL_DUMP_MAX_THREADS 1024
#define CSIGNAL_DUMP_MAX_FRAMES 64
/// High byte of the si_value that marks an internal-signal delivery as a stack-capture request.
#define CSIGNAL_DUMP_TAG 0x53000000u

/// State of one dump slot.
enum {
    CSIGNAL_DUMP_EMPTY = 0,      ///< not armed (or withdrawn)
    CSIGNAL_DUMP_REQUESTED = 1,  ///< armed, signal sent, no answer yet
    CSIGNAL_DUMP_CAPTURING = 2,  ///< the thread's handler is walking its stack
    CSIGNAL_DUMP_CAPTURED = 3,   ///< frames published
};

/// What the walk noticed.
enum {
    CSIGNAL_DUMP_FLAG_NO_STACK = 1,   ///< RSP was in no known mapping: only the PC was kept
    CSIGNAL_DUMP_FLAG_RESYNCED = 2,   ///< RBP was no frame pointer; the chain was found by scanning the stack
    CSIGNAL_DUMP_FLAG_TRUNCATED = 4,  ///< more than CSIGNAL_DUMP_MAX_FRAMES frames
    CSIGNAL_DUMP_FLAG_FAULT = 8,      ///< a read of the stack failed (EFAULT): the chain ends there
};

/// One thread's captured stack: frames[0] is the interrupted PC, then return addresses, innermost first.
typedef struct csignal_dump_stack {
    int32_t tid;
    uint32_t frame_count;
    uint32_t flags;
    uint32_t reserved;
    uint64_t sp;
    uint64_t frames[CSIGNAL_DUMP_MAX_FRAMES];
} csignal_dump_stack;

/// What dladdr knows about an address.
typedef struct csignal_symbol {
    uint64_t image_base;
    uint64_t symbol_address;   ///< 0 when no symbol covers the address
    char image[256];
    char symbol[1024];
} csignal_symbol;

/// Starts a dump: takes the dump lock (one dump at a time), reads /proc/self/maps into the preallocated table
/// and opens a new generation. The engine must be running (its internal handler does the capture).
/// Returns 0 or errno (ESRCH: engine not running). On 0, finish with csignal_dump_end. NOT SAFE: any thread.
int csignal_dump_begin(void);
/// Arms slot `index` for thread `tid` and queues the internal signal to it. Returns 0 or errno (ESRCH: the
/// thread is gone). NOT SAFE: any thread, between begin and end.
int csignal_dump_request(uint32_t index, pid_t tid);
/// Captures the calling thread's own stack into slot `index` (no signal). NOT SAFE: any thread.
int csignal_dump_capture_self(uint32_t index);
/// Waits until `expected` requested captures were published or `timeout_ns` passed; returns how many were.
/// NOT SAFE: any thread.
uint32_t csignal_dump_wait(uint32_t expected, int64_t timeout_ns);
/// Copies slot `index` out if it was captured and returns its state (CSIGNAL_DUMP_*). A request still
/// unanswered is withdrawn (returns CSIGNAL_DUMP_REQUESTED). NOT SAFE: any thread.
int32_t csignal_dump_take(uint32_t index, csignal_dump_stack *out);
/// The state of slot `index` now (CSIGNAL_DUMP_*), without taking it. NOT SAFE: any thread.
int32_t csignal_dump_state(uint32_t index);
/// Releases the dump lock. NOT SAFE: any thread.
void csignal_dump_end(void);
/// Whether the last dump read stacks with process_vm_readv (else: plain loads checked against the table).
bool csignal_dump_uses_vm_readv(void);
/// dladdr for one address: returns 1 when an image covers it. NOT SAFE: any thread (dladdr takes locks).
int csignal_dump_symbolize(uint64_t address, csignal_symbol *out);

/// Names the calling thread (15 bytes kept). Returns 0 or errno. NOT SAFE: any thread. (threadname.c)
int csignal_set_thread_name(const char *name);

// MARK: - Child processes (children.c)

/// Makes the calling process a child subreaper (`on`) or not: orphaned descendants are reparented to it instead
/// of to init. Returns 0 or errno. The corresponding call is `prctl(PR_SET_CHILD_SUBREAPER)`. NOT SAFE: any thread.
int csignal_set_child_subreaper(bool on);
/// Whether the calling process is a child subreaper. Returns 0 or errno. `prctl(PR_GET_CHILD_SUBREAPER)`.
/// NOT SAFE: any thread.
int csignal_is_child_subreaper(bool *on);
/// Adds to `actions`: make the spawned child's process group the foreground group of terminal `terminal_fd`
/// (after POSIX_SPAWN_SETPGROUP, with every signal blocked, so the child gets no SIGTTOU for it). Returns 0 or
/// errno. The corresponding C function is `posix_spawn_file_actions_addtcsetpgrp_np`. NOT SAFE: any thread.
int csignal_spawn_add_tcsetpgrp(posix_spawn_file_actions_t *actions, int terminal_fd);

// MARK: - Test hooks

/// When set, the fallback handler deliberately overwrites errno before returning through its errno guard,
/// so a test can prove the guard restores it. ASYNC-SIGNAL-SAFE.
void csignal_test_set_clobber_errno(bool on);
/// Install a plain counting handler for `signo` (a "foreign" handler for restore tests).
int csignal_test_install_counting_handler(int signo);
uint64_t csignal_test_counting_handler_hits(void);
bool csignal_test_is_counting_handler(int signo);
/// Unblocks `signo` in the calling thread, sets errno to `value`, sends `signo` to this thread (the handler runs
/// before the send returns), blocks it again and returns errno as the handler left it.
int csignal_test_errno_roundtrip(int signo, int value);

#ifdef __cplusplus
}
#endif

#endif // __linux__
#endif // CSIGNAL_SHIM_H
