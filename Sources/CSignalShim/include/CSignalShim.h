// CSignalShim: the C half of SignalCore.
//
// Everything that can run in signal-handler context lives in C, behind this header. Swift sees plain structs
// and functions only: Swift 6 cannot import `_Atomic` fields, so counters are read through the `static inline`
// accessors below, which compile to one plain load on x86_64 and arm64.
//
// Each function says where it may run:
//   ASYNC-SIGNAL-SAFE          may run in a signal handler (and anywhere else);
//   NOT SAFE: setup only       start/stop/watch/unwatch, serialised by the caller (the Swift engine's lock);
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
    CSIGNAL_ROUTE_WAITER = 0,   ///< dequeued with sigwaitinfo by the thread that holds the wait role
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
    int32_t tid;            ///< thread that recorded it (the role holder, or the interrupted thread)
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
/// The real-time signal the running engine chose for itself at start (SIGRTMAX unless that one was taken), or
/// 0 when the engine never ran. ASYNC-SIGNAL-SAFE.
int csignal_internal_signo(void);

/// Why a signal cannot be watched (CSIGNAL_REFUSE_*), or 0 when it can.
enum {
    CSIGNAL_REFUSE_RANGE = 1,        ///< not in 1...SIGRTMAX
    CSIGNAL_REFUSE_UNCATCHABLE = 2,  ///< SIGKILL, SIGSTOP
    CSIGNAL_REFUSE_SYNCHRONOUS = 3,  ///< SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS
    CSIGNAL_REFUSE_LIBC = 4,         ///< 32...SIGRTMIN-1, glibc's own
    CSIGNAL_REFUSE_INTERNAL = 5,     ///< the engine's internal signal
};
/// CSIGNAL_REFUSE_* for `signo`, or 0. ASYNC-SIGNAL-SAFE.
int csignal_watch_refusal(int signo);

/// Signals that reach one thread by their nature (the kernel raises SIGPIPE and SIGXFSZ in the thread that
/// wrote): the engine never blocks them; the fallback handler records them where they land. Bit n-1 = signal n.
uint64_t csignal_thread_directed_class(void);

// MARK: - Results of setup calls

/// What went wrong in a setup call.
enum {
    CSIGNAL_OK = 0,
    CSIGNAL_E_SYSTEM = 1,             ///< `call` failed with `err`
    CSIGNAL_E_ALREADY_RUNNING = 2,
    CSIGNAL_E_NOT_RUNNING = 3,
    CSIGNAL_E_WAIT_THREAD_BUSY = 4,   ///< the wait thread (or a borrower) did not answer within the deadline
    CSIGNAL_E_NO_INTERNAL_SIGNAL = 5, ///< every real-time signal is taken or refused by the system
    CSIGNAL_E_INTERNAL_TAKEN = 6,     ///< someone replaced the handler of the internal signal `signo`
    CSIGNAL_E_UNREACHABLE_THREAD = 7, ///< thread `tid` blocks the internal signal but not watched signal `signo`
    CSIGNAL_E_THREAD_TIMEOUT = 8,     ///< thread `tid` did not apply a mask change within the deadline
    CSIGNAL_E_INVALID = 9,            ///< bad argument (a configuration value, a signal that cannot be watched)
    CSIGNAL_E_ON_WAIT_THREAD = 10,    ///< called from the thread that holds the wait role
};

typedef struct csignal_status {
    int32_t code;       ///< CSIGNAL_OK or CSIGNAL_E_*
    int32_t err;        ///< errno for CSIGNAL_E_SYSTEM
    int32_t signo;      ///< the signal concerned, when there is one
    int32_t tid;        ///< the thread concerned, when there is one
    const char *call;   ///< the failing system call for CSIGNAL_E_SYSTEM (a static string)
} csignal_status;

// MARK: - Engine (NOT SAFE: setup only)

/// Called on the thread that holds the wait role (the wait thread, or a borrower), in ordinary thread context:
/// move what the ring holds to the subscriptions.
typedef void (*csignal_callback_fn)(void *context);

typedef struct csignal_start_options {
    uint64_t avoid;               ///< signals the internal signal must not be (those about to be watched)
    uint32_t ring_capacity;       ///< power of two, 2...CSIGNAL_RING_MAX_CAPACITY
    uint32_t batch_limit;         ///< deliveries dequeued per wake-up before the pump runs (1...4096)
    csignal_callback_fn pump;     ///< may be NULL: then records wait for csignal_ring_pop
    csignal_callback_fn run_jobs; ///< called on the wait thread only, after csignal_waiter_wake_for_jobs
    void *context;
} csignal_start_options;

/// Starts the engine: chooses and installs the internal signal, creates the wait thread (named "signalcore")
/// and its lease timer. Watches nothing yet: follow with csignal_engine_watch. On error nothing changed.
void csignal_engine_start(const csignal_start_options *options, csignal_status *status);

/// Adds signals (bit n-1 = signal n) to the watched set: installs the fallback handler (saving the previous
/// disposition), tells the wait thread, blocks them in every thread (recording each thread's own previous
/// state). On error everything is as before and a retry does the whole job.
void csignal_engine_watch(uint64_t mask, csignal_status *status);

/// Removes signals: restores each thread's own previous mask for them (a delivery pending on a thread then
/// runs the fallback handler and is recorded), takes them out of the wait set, restores each previous
/// disposition (unless someone else replaced the engine's handler meanwhile). On error everything is as before.
void csignal_engine_unwatch(uint64_t mask, csignal_status *status);

/// Unwatches everything, stops and joins the wait thread, discards pending copies of the internal signal and
/// restores its disposition. On error the engine still runs and watches what it watched.
void csignal_engine_stop(csignal_status *status);

bool csignal_engine_running(void);
uint64_t csignal_engine_watched(void);
/// Kernel thread id of the wait thread, or 0.
pid_t csignal_engine_waiter_tid(void);
/// Whether the calling thread is the engine's wait thread. ASYNC-SIGNAL-SAFE (a thread-local flag).
bool csignal_on_wait_thread(void);
/// Whether the calling thread holds the wait role now (the wait thread, or a borrower inside a borrow).
bool csignal_holds_role(void);

/// For the child of a fork() made while the engine runs, before it does anything else. The child has one thread
/// and no wait thread, but inherited the engine's dispositions and the forking thread's mask, so watched signals
/// would stay blocked and pending forever. This puts back, in the child only, what stop would: each watched
/// signal's previous disposition and the internal signal's, and the calling thread's own previous mask for the
/// watched signals. The engine then reports not running; the counters keep the values they had at the fork.
/// Returns 0 (also when the engine was not running), or EINVAL when called in the process that started the
/// engine. ASYNC-SIGNAL-SAFE: sigaction, sigprocmask, getpid and atomic stores only.
int csignal_engine_prepare_child(void);

// MARK: - Back-pressure and wake-ups (NOT SAFE: any thread)

/// A lossless subscription for `mask` is full: the role holder stops taking these signals from the kernel
/// (real-time ones then queue there, and sigqueue reports EAGAIN to senders when the queue is full). Counted per
/// signal: nests.
void csignal_hold(uint64_t mask);
/// Undoes one csignal_hold(mask) and wakes the role holder when a signal is no longer held.
void csignal_unhold(uint64_t mask);
/// Signals held now.
uint64_t csignal_held(void);
/// Asks the role holder to look at the ring and its wait set again (coalesced). ASYNC-SIGNAL-SAFE.
void csignal_engine_wake_holder(void);
/// Asks the wait thread (never a borrower) to call run_jobs soon (coalesced). ASYNC-SIGNAL-SAFE.
void csignal_waiter_wake_for_jobs(void);

// MARK: - Borrowing the wait role (NOT SAFE: any thread but the wait thread)

/// Makes the calling thread the one that sleeps in sigwaitinfo (the wait thread waits for the internal signal
/// only meanwhile), so that the kernel wakes this thread directly. Returns 0, EBUSY (another thread borrows it,
/// or setup is running), ESRCH (engine stopped), EDEADLK (this thread holds the role already) or ETIMEDOUT (the
/// wait thread did not lend it in time). On 0 the caller holds the role: it must pump the ring now (records may
/// be waiting), then call csignal_borrow_wait, and always end with csignal_borrow_end or _end_lazily.
int csignal_borrow_begin(int64_t timeout_ns);
/// One batch as the role holder: waits up to `timeout_ns` for deliveries and records them. Sets *pump when the
/// ring must be pumped (something was recorded, or a wake-up arrived). Returns 0, ETIMEDOUT (nothing arrived)
/// or ECANCELED (setup needs the role back: pump, then end the borrow now).
int csignal_borrow_wait(int64_t timeout_ns, bool *pump);
/// Gives the role back to the wait thread.
void csignal_borrow_end(void);
/// Gives the role back lazily, after returning an event: for the next millisecond (the lease) the role stays
/// with this thread without anyone waiting in sigwaitinfo, so that a caller that comes straight back for the
/// next event takes it again without waking the wait thread twice. When the lease runs out, or a handler-route
/// delivery, another borrower or setup needs the role, the wait thread takes it back. Deliveries meanwhile wait
/// in the kernel (real-time ones queued, standard ones coalesced); none is lost.
void csignal_borrow_end_lazily(void);

// MARK: - Mask spreading (NOT SAFE: setup only)

typedef struct csignal_spread_result {
    uint32_t passes;           ///< passes over /proc/self/task
    uint32_t signalled;        ///< threads asked to apply the change
    uint32_t unreachable;      ///< threads that block the internal signal (and the watched signals too)
    uint32_t competing;        ///< threads that applied the change but wait with a temporary mask (sigsuspend,
                               ///< ppoll, pselect) that lets watched signals in: a second dequeuer
    uint32_t untracked;        ///< threads whose previous mask could not be recorded (table full)
    int32_t adopted_parker;    ///< tid of libdispatch's parked main thread the engine took over, or 0
} csignal_spread_result;

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
    uint64_t blocked;          ///< SigBlk, bit n-1 = signal n (a temporary mask while in sigsuspend & co.)
    uint64_t pending;          ///< SigPnd: signals sent to this thread alone and not delivered yet
    uint64_t voluntary_switches;
    int32_t syscall_nr;        ///< the system call the thread waits in (/proc/.../syscall), -1 when running
    int32_t is_parker;         ///< libdispatch's parked main thread, taken over by the engine
    char name[20];
} csignal_thread_report;

/// Reads /proc/self/task/*/status. Fills up to `max` reports; returns the number of threads found
/// (which may exceed `max`), or -errno.
int csignal_audit(csignal_thread_report *out, int max);

// MARK: - Dispositions and sending (NOT SAFE: any thread)

enum { CSIGNAL_DISP_DEFAULT = 0, CSIGNAL_DISP_IGNORE = 1, CSIGNAL_DISP_HANDLER = 2 };

/// Current disposition of `signo`: CSIGNAL_DISP_*, or -errno.
int csignal_disposition(int signo);
/// Is the handler installed for `signo` SignalCore's fallback handler?
bool csignal_is_engine_handler(int signo);
/// Sends to one thread of this process (tgkill). Returns 0 or errno.
int csignal_tgkill(pid_t tid, int signo);
/// Queues `signo` with `value` to one thread of this process (rt_tgsigqueueinfo, SI_QUEUE). Returns 0 or errno.
int csignal_tg_sigqueue(pid_t tid, int signo, int value);
/// The calling thread's kernel thread id (the raw system call). ASYNC-SIGNAL-SAFE.
pid_t csignal_gettid(void);

// MARK: - Thread dump (dump.c)

/// Threads one dump can cover, and frames kept per thread.
#define CSIGNAL_DUMP_MAX_THREADS 1024
#define CSIGNAL_DUMP_MAX_FRAMES 64

/// State of one dump slot.
enum {
    CSIGNAL_DUMP_EMPTY = 0,      ///< not armed (or withdrawn)
    CSIGNAL_DUMP_REQUESTED = 1,  ///< armed, signal sent, no answer yet
    CSIGNAL_DUMP_CAPTURING = 2,  ///< the thread's handler is walking its stack
    CSIGNAL_DUMP_CAPTURED = 3,   ///< frames published
};

/// What the walk noticed.
enum {
    CSIGNAL_DUMP_FLAG_NO_STACK = 1,     ///< the stack pointer was in no known mapping: only the PC was kept
    CSIGNAL_DUMP_FLAG_RESYNCED = 2,     ///< the frame pointer was no frame pointer; the chain was found by scanning
    CSIGNAL_DUMP_FLAG_TRUNCATED = 4,    ///< more than CSIGNAL_DUMP_MAX_FRAMES frames
    CSIGNAL_DUMP_FLAG_FAULT = 8,        ///< a read of the stack failed (EFAULT): the chain ends there
    CSIGNAL_DUMP_FLAG_UNSUPPORTED = 16, ///< no frame walker for this architecture: only the PC was kept
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

/// Whether this build can walk stacks (x86_64 and arm64 can). When false, dumps keep only each thread's PC.
bool csignal_dump_supported(void);
/// Starts a dump: takes the dump lock (one dump at a time), reads /proc/self/maps into the preallocated table
/// and opens a new generation. The engine must be running (its internal handler does the capture).
/// Returns 0 or errno (ESRCH: engine not running). On 0, finish with csignal_dump_end. NOT SAFE: any thread.
int csignal_dump_begin(void);
/// Arms slot `index` for thread `tid` and rings it with the internal signal. Returns 0 or errno (ESRCH: the
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

#ifdef __cplusplus
}
#endif

#endif // __linux__
#endif // CSIGNAL_SHIM_H
