// Declarations shared by the CSignalShim translation units, and only by them (Swift never sees this file).
//
// Every cross-file symbol is declared here and nowhere else. The files form a chain without cycles; each line
// below lists a file and the files it calls into:
//
//   futex.c, send.c, threads.c, ring.c        (leaves)
//   recorder.c      -> ring.c
//   watched.c       -> send.c, ring.c
//   role.c          -> send.c, futex.c, watched.c
//   masks.c         -> send.c, futex.c, threads.c, watched.c
//   parker.c        -> send.c, futex.c, threads.c, masks.c, watched.c, role.c (the wait thread's id)
//   dump.c          -> send.c, futex.c, watched.c
//   handler.c       -> recorder.c, role.c, masks.c, parker.c, dump.c, watched.c
//   take.c          -> recorder.c, role.c, watched.c, ring.c
//   waiter.c        -> take.c, role.c, futex.c, send.c, watched.c, parker.c
//   borrow.c        -> take.c, role.c, waiter.c, futex.c, send.c
//   dispositions.c  -> send.c, watched.c (and the handlers' addresses)
//   engine.c        -> dispositions.c, masks.c, parker.c, waiter.c, role.c, watched.c, ring.c, futex.c
//   fork.c          -> dispositions.c, masks.c, waiter.c, role.c, watched.c
//   audit.c         -> threads.c, parker.c, watched.c, waiter.c
#ifndef CSIGNAL_INTERNAL_H
#define CSIGNAL_INTERNAL_H

#ifndef _GNU_SOURCE
#error "CSignalShim must be compiled with _GNU_SOURCE (Package.swift's cSettings define it)"
#endif

#include "CSignalShim.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

// Layout that Swift mirrors through the imported structs.
_Static_assert(sizeof(csignal_record) == 56, "csignal_record layout changed: update the Swift mirror");
_Static_assert(sizeof(csignal_counter_line) == 64, "one counter line per cache line");
_Static_assert(CSIGNAL_MAX_SIGNO == _NSIG - 1, "Linux numbers signals 1..._NSIG-1");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "role.c waits on the low half of a 64-bit word");

// --- injection points (test builds only) ---------------------------------------------------------------------
//
// CSIGNAL_INJECT(name) marks a place where a race needs one thread to pause. The product never defines
// CSIGNAL_TESTING, so the macro expands to nothing there; the C tests (Tests/CShimTests) compile the shim with
// -DCSIGNAL_TESTING and define csignal_inject() to pause, count or sleep at the named point.
#ifdef CSIGNAL_TESTING
void csignal_inject(const char *name);
#define CSIGNAL_INJECT(name) csignal_inject(name)
#else
#define CSIGNAL_INJECT(name) ((void)0)
#endif

/// Bit for signal n in a 64-bit mask.
static inline uint64_t csignal_bit(int signo) { return (uint64_t)1 << (unsigned)(signo - 1); }

// --- futex.c -------------------------------------------------------------------------------------------------

/// CLOCK_MONOTONIC in nanoseconds. ASYNC-SIGNAL-SAFE.
int64_t csignal_now_ns(void);
/// Sleeps while *word == expected, at most timeout_ns (< 0: no limit). Returns 0, ETIMEDOUT, EAGAIN or EINTR.
/// NOT SAFE: ordinary threads.
int csignal_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
/// Wakes every thread waiting on `word`. ASYNC-SIGNAL-SAFE (the raw system call).
void csignal_futex_wake(_Atomic uint32_t *word);

// --- send.c --------------------------------------------------------------------------------------------------

/// getpid() cached at start (getpid is safe too; this saves the call). Set by engine.c.
extern _Atomic pid_t csignal_own_pid;
/// Rings thread `tid` with the internal signal. A doorbell carries no request: whoever receives it looks at
/// shared state. For a thread with a doorbell timer (the wait thread, borrowers) it arms the timer and never
/// fails; for another thread it is a tgkill, which fails with EAGAIN when the user's queued signals reached
/// RLIMIT_SIGPENDING. Returns 0 or errno (ESRCH: the thread is gone). ASYNC-SIGNAL-SAFE.
int csignal_doorbell(pid_t tid);
/// csignal_doorbell, retried while the kernel answers EAGAIN, until `deadline_ns` (CLOCK_MONOTONIC). NOT SAFE.
int csignal_ring_patiently(pid_t tid, int64_t deadline_ns);
/// Gives thread `tid` a doorbell timer. Returns 0 or errno. NOT SAFE: ordinary threads.
int csignal_bell_register(pid_t tid);
/// Thread `tid` exits: its timer goes (deleted once no handler can be using it). NOT SAFE.
void csignal_bell_retire(pid_t tid);
/// Stop: deletes every doorbell timer. After fork: forgets them (the child has none).
void csignal_bells_clear(void);
void csignal_bells_forget(void);
/// Records the internal signal chosen at start (engine.c). The value stays after stop, for late doorbells.
void csignal_set_internal_signo(int signo);

// --- threads.c -----------------------------------------------------------------------------------------------

typedef struct csignal_tid_list {
    pid_t *tids;
    size_t count, capacity;
} csignal_tid_list;

/// Lists /proc/self/task into `out` (reusing its storage). Returns 0 or errno. NOT SAFE.
int csignal_list_threads(csignal_tid_list *out);
bool csignal_tid_list_contains(const csignal_tid_list *list, pid_t tid);
int csignal_tid_list_add(csignal_tid_list *list, pid_t tid);
void csignal_tid_list_free(csignal_tid_list *list);
/// Fills `out` from /proc/self/task/TID/status and /syscall. Returns 0 or errno. NOT SAFE.
int csignal_read_thread(pid_t tid, csignal_thread_report *out);
/// The system call thread `tid` waits in and its first argument, from /proc/self/task/TID/syscall.
/// Returns the number, or -1 when the thread runs or the file cannot be read. NOT SAFE.
long csignal_thread_syscall(pid_t tid, uint64_t *arg0);

// --- ring.c --------------------------------------------------------------------------------------------------

/// Appends `record` (setting its sequence number) unless the ring is full. ASYNC-SIGNAL-SAFE.
bool csignal_ring_push(csignal_record *record);
/// Empties the ring and sets its capacity. NOT SAFE: setup only, with no producer running.
void csignal_ring_reset(uint32_t capacity);
/// Free slots now (approximate while producers run). ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_free(void);

// --- recorder.c ----------------------------------------------------------------------------------------------

/// Counts a delivery and appends its record to the ring. ASYNC-SIGNAL-SAFE.
void csignal_record_delivery(int signo, const siginfo_t *info, int route);

// --- watched.c -----------------------------------------------------------------------------------------------

/// The signals the engine watches (bit n-1 = signal n). Setup writes, everyone reads. ASYNC-SIGNAL-SAFE reads.
uint64_t csignal_watched(void);
/// The watched signals that threads block: watched minus csignal_thread_directed_class(). ASYNC-SIGNAL-SAFE.
uint64_t csignal_watched_blockable(void);
void csignal_set_watched(uint64_t mask);
/// Mask the role holder waits for now: blockable watched minus held (plus the internal signal), or the
/// internal signal alone while the ring has no room for a batch. ASYNC-SIGNAL-SAFE.
void csignal_wait_set(sigset_t *set, uint32_t batch_limit);
/// Fills `set` with the signals of `mask`. ASYNC-SIGNAL-SAFE.
void csignal_sigset_from_mask(sigset_t *set, uint64_t mask);
/// The bits of `set` for signals 1...64. ASYNC-SIGNAL-SAFE.
uint64_t csignal_mask_from_sigset(const sigset_t *set);
/// Forgets every hold (start, and after fork).
void csignal_reset_holds(void);

// --- role.c --------------------------------------------------------------------------------------------------

/// Phases of the wait role (see role.c's table).
enum { CSIGNAL_ROLE_HOME = 0, CSIGNAL_ROLE_ASKED = 1, CSIGNAL_ROLE_LENT = 2, CSIGNAL_ROLE_LAZY = 3 };

/// The role word: generation (bits 0-31), phase (32-33), reclaim flag (34), borrower tid (35-63).
uint64_t csignal_role_load(void);
static inline uint32_t csignal_role_phase(uint64_t word) { return (uint32_t)(word >> 32) & 3u; }
static inline bool csignal_role_reclaiming(uint64_t word) { return (word >> 34) & 1u; }
static inline pid_t csignal_role_borrower(uint64_t word) { return (pid_t)(word >> 35); }
static inline uint32_t csignal_role_generation(uint64_t word) { return (uint32_t)word; }
/// Moves the role from `expected` (the exact word read) to `phase` held by `borrower` (0 for HOME). Returns
/// false when the word changed meanwhile; an illegal move is a programming error and aborts. ASYNC-SIGNAL-SAFE.
bool csignal_role_move(uint64_t expected, uint32_t phase, pid_t borrower);
/// Sets the reclaim flag: no borrow starts or resumes until csignal_role_end_reclaim, and every holder gives the
/// role back. Then waits (futex) until the role is HOME. Returns 0 or ETIMEDOUT (the flag is cleared again).
/// Setup only; never nested.
int csignal_role_reclaim(int64_t timeout_ns);
void csignal_role_end_reclaim(void);
/// Waits until the role word differs from `seen` or `timeout_ns` passed. NOT SAFE: ordinary threads.
int csignal_role_wait_change(uint64_t seen, int64_t timeout_ns);
/// Tells whoever holds the role that the ring or its wait set needs a look (coalesced by a flag: at most one
/// doorbell in flight). ASYNC-SIGNAL-SAFE.
void csignal_role_ring(void);
/// Called by a thread that just became the holder, and by the holder after a doorbell, before it pumps: clears
/// the flag, so that a record published after this point rings again. ASYNC-SIGNAL-SAFE.
void csignal_role_acquired(void);
/// The thread a doorbell for the holder must go to: the borrower while LENT, else the wait thread.
pid_t csignal_role_holder_tid(uint64_t word);
/// Start, stop, after fork.
void csignal_role_reset(void);
/// Kernel thread id of the wait thread (0 when there is none).
extern _Atomic pid_t csignal_waiter_tid_value;
/// Set on the thread that holds the role (the wait thread for its whole life, a borrower inside a borrow).
extern _Thread_local pid_t csignal_role_tid;

// --- take.c --------------------------------------------------------------------------------------------------

/// One batch for the role holder: waits for the first delivery in `set` (forever when `timeout` is NULL),
/// records it, then takes what is already pending without sleeping until `limit` deliveries are recorded or a
/// doorbell is seen. Sets *pump when something was recorded or a doorbell arrived. Returns 0, or the errno of
/// the first wait (EAGAIN: timed out or nothing pending, EINTR). NOT SAFE: the role holder only.
int csignal_take_batch(const sigset_t *set, const struct timespec *timeout, uint32_t limit, bool *pump);

// --- waiter.c ------------------------------------------------------------------------------------------------

/// Creates the wait thread and its lease timer. Returns 0 or errno with *call set.
int csignal_waiter_start(const csignal_start_options *options, const char **call);
/// Asks the wait thread to exit and joins it (it must be HOME, under reclaim). 0, or ETIMEDOUT.
int csignal_waiter_stop(int64_t timeout_ns);
/// Tells the wait thread that the watched set changed and waits until it waits with the new set and blocks
/// it in its own mask. The role must be HOME (under reclaim). 0, or ETIMEDOUT.
int csignal_waiter_apply(int64_t timeout_ns);
/// Arms the lease timer to ring the wait thread after `ns` (0 disarms). NOT SAFE: any thread.
void csignal_lease_arm(long ns);
bool csignal_lease_available(void);
uint32_t csignal_batch_limit(void);
/// The pump callback (Swift), or nothing. Called by the role holder.
void csignal_call_pump(void);
/// In a forked child: forgets the wait thread. ASYNC-SIGNAL-SAFE.
void csignal_waiter_forget(void);
extern _Atomic bool csignal_running;
/// +1 at every start: a borrower's doorbell timer belongs to one run of the engine.
extern _Atomic uint32_t csignal_run_id;

// --- masks.c -------------------------------------------------------------------------------------------------

/// Applies the current mask request to the interrupted thread's saved mask (the kernel installs it when the
/// handler returns), recording the thread's own previous state the first time, and acknowledges it for this
/// thread. Called by the internal handler. ASYNC-SIGNAL-SAFE.
void csignal_masks_apply(sigset_t *mask, pid_t self);
/// Spreads `block` (the blockable watched set from now on) to every thread but the wait thread, and during this
/// spread unblocks `release` in threads that have no record of it. Returns CSIGNAL_OK or an error in *status.
void csignal_masks_spread(uint64_t block, uint64_t release, int64_t timeout_ns, csignal_status *status);
/// The blockable set threads were last asked to block. ASYNC-SIGNAL-SAFE.
uint64_t csignal_masks_wanted(void);
uint32_t csignal_masks_generation(void);
/// Marks thread `tid` as having applied generation `gen` (the parker acknowledges from its own loop).
void csignal_masks_ack(pid_t tid, uint32_t gen);
/// The calling thread's own previous state for `mask`, as recorded (bits set: it had them blocked). Unknown
/// signals count as unblocked. For fork.c.
uint64_t csignal_masks_previous_blocked(pid_t tid, uint64_t mask);
/// Forgets every thread record (stop, after fork).
void csignal_masks_reset(void);
csignal_spread_result *csignal_masks_last_result(void);

// --- parker.c ------------------------------------------------------------------------------------------------

/// If the main thread is parked in libdispatch's dispatch_main (rt_sigsuspend on libdispatch's static empty
/// mask, forever), asks it to move into the engine's own park loop, which waits the same way but keeps the
/// watched signals blocked. Returns the parker's tid once adopted, else 0. Setup only.
pid_t csignal_parker_adopt(int64_t timeout_ns);
/// Called by the internal handler on every thread: takes the thread over when it is the parker asked for and
/// the interrupted context is exactly its rt_sigsuspend. ASYNC-SIGNAL-SAFE.
void csignal_parker_maybe_take(void *ucontext, pid_t self);
/// The adopted parker's tid, or 0. ASYNC-SIGNAL-SAFE.
pid_t csignal_parker_tid(void);
/// The fallback handler ran on thread `self`, interrupting `ucontext`: if that is the main thread interrupted in
/// what may be libdispatch's park, the wait thread should look for a parker to adopt. ASYNC-SIGNAL-SAFE.
void csignal_parker_hint(pid_t self, const void *ucontext);
/// Whether a hint arrived since the last call (clears it), unless an attempt after a hint found nothing since
/// setup last looked. For the wait thread, which then calls csignal_parker_adopt_after_hint.
bool csignal_parker_take_hint(void);
/// The wait thread's look after a hint: waits up to `timeout_ns` for the main thread to be back in its park,
/// and gives up early when `give_up` says the wait thread has other work (setup waiting for it).
void csignal_parker_adopt_after_hint(int64_t timeout_ns, bool (*give_up)(void));
#ifdef CSIGNAL_TESTING
/// Treats `mask` (a static sigset in the test) as libdispatch's park mask.
void csignal_parker_set_foreign_mask(const void *mask);
/// How often the wait thread looked for the parker after a hint, and how often it stopped for other work.
void csignal_parker_test_looks(int *after_hints, int *abandoned);
#endif

// --- dump.c --------------------------------------------------------------------------------------------------

/// Captures this thread's stack if a dump asked for it. ASYNC-SIGNAL-SAFE.
void csignal_dump_maybe_capture(void *ucontext, pid_t self);

// --- handler.c -----------------------------------------------------------------------------------------------

void csignal_fallback_handler(int signo, siginfo_t *info, void *ucontext);
void csignal_internal_handler(int signo, siginfo_t *info, void *ucontext);
/// Handlers running on some thread now (entry increments, exit decrements).
extern _Atomic int csignal_handlers_active;
/// Waits until the running handlers have returned (bounded: gives up after ~2 s). Setup only.
void csignal_wait_handlers_idle(void);
/// Writes a fixed message to fd 2 and aborts. ASYNC-SIGNAL-SAFE.
_Noreturn void csignal_fatal(const char *message, unsigned long length);
#define CSIGNAL_FATAL(literal) csignal_fatal((literal), sizeof(literal) - 1)

// --- dispositions.c ------------------------------------------------------------------------------------------

/// Chooses the internal signal (SIGRTMAX, or the highest free real-time signal below it, never one in
/// `avoid`) and installs its handler. Returns CSIGNAL_OK or an error in *status.
void csignal_internal_install(uint64_t avoid, csignal_status *status);
/// Discards every pending copy of the internal signal in every thread (SIG_IGN does that), then restores its
/// previous disposition, unless someone else installed a handler since start.
void csignal_internal_restore(void);
/// Whether the internal signal still carries the engine's handler.
bool csignal_internal_is_ours(void);
/// Installs the fallback handler for `mask`, saving each previous disposition. All or nothing.
void csignal_dispositions_install(uint64_t mask, csignal_status *status);
/// Restores the previous disposition of each signal in `mask` whose handler is still the engine's.
void csignal_dispositions_restore(uint64_t mask);
/// In a forked child: restores every saved disposition (watched and internal). ASYNC-SIGNAL-SAFE.
int csignal_dispositions_restore_in_child(uint64_t watched);

#endif
