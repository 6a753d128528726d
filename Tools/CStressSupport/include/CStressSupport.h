// CStressSupport: the system calls and shared memory the stress tool needs and Swift cannot make directly.
//
// Sending to another process's thread with a value (rt_tgsigqueueinfo) has no libc wrapper; the shared page
// between the stress processes needs atomic access, which Swift 6 cannot express on imported C fields; and
// the churn threads are plain pthreads that allocate, so they never touch Swift's runtime while they run.
// None of this runs in a signal handler. NOT SAFE: ordinary threads only.
#ifndef CSTRESS_SUPPORT_H
#define CSTRESS_SUPPORT_H

#ifdef __linux__

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CSTRESS_MAX_SENDERS 32

/// The page every process of one stress run maps (a file in the run directory).
typedef struct cstress_shared {
    uint64_t sent[CSTRESS_MAX_SENDERS];           ///< sender i: signals sent so far (progress)
    uint64_t retries[CSTRESS_MAX_SENDERS];        ///< sender i: EAGAIN retries so far
    uint64_t marker_seen[CSTRESS_MAX_SENDERS];    ///< target: latest marker sequence seen from sender i
    uint64_t records_seen;                        ///< target: records its consumer took so far
    uint64_t pad[7];
    uint64_t taken[CSTRESS_MAX_SENDERS];          ///< target: real-time records taken from sender i
} cstress_shared;

cstress_shared *cstress_map(const char *path, int create);
static inline uint64_t cstress_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cstress_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/// Per-sender fields by index (Swift cannot index an imported C array).
static inline uint64_t cstress_marker_seen(cstress_shared *s, int i) { return cstress_load(&s->marker_seen[i & 31]); }
static inline void cstress_set_marker_seen(cstress_shared *s, int i, uint64_t v) { cstress_store(&s->marker_seen[i & 31], v); }
static inline uint64_t cstress_taken(cstress_shared *s, int i) { return cstress_load(&s->taken[i & 31]); }
static inline void cstress_set_taken(cstress_shared *s, int i, uint64_t v) { cstress_store(&s->taken[i & 31], v); }
static inline uint64_t cstress_sent(cstress_shared *s, int i) { return cstress_load(&s->sent[i & 31]); }
static inline void cstress_set_sent(cstress_shared *s, int i, uint64_t v) { cstress_store(&s->sent[i & 31], v); }
static inline uint64_t cstress_retries(cstress_shared *s, int i) { return cstress_load(&s->retries[i & 31]); }
static inline void cstress_set_retries(cstress_shared *s, int i, uint64_t v) { cstress_store(&s->retries[i & 31], v); }

/// Sends with retry on EAGAIN (the kernel's queue of pending signals is full: RLIMIT_SIGPENDING). Each retry
/// yields the CPU first (after 16 in a row, sleeps 50 µs instead, so that spinning senders do not starve the
/// target on a small machine) and is counted in *retries; gives up with EAGAIN after `timeout_ns` without success.
/// Return 0 or the errno of the failed call.
int cstress_kill(pid_t pid, int signo, uint64_t *retries, int64_t timeout_ns);
int cstress_sigqueue(pid_t pid, int signo, int value, uint64_t *retries, int64_t timeout_ns);
int cstress_tgkill(pid_t pid, pid_t tid, int signo, uint64_t *retries, int64_t timeout_ns);
/// rt_tgsigqueueinfo with si_code SI_QUEUE, our pid and uid, and `value`: a sigqueue aimed at one thread.
int cstress_tgsigqueue(pid_t pid, pid_t tid, int signo, int value, uint64_t *retries, int64_t timeout_ns);

/// Sets RLIMIT_SIGPENDING (soft and hard) for this process and the children it starts. Returns 0 or errno.
int cstress_set_sigpending_limit(uint64_t limit);

int64_t cstress_now_ns(void);
void cstress_sleep_ns(int64_t ns);
int cstress_rtmin(void);
pid_t cstress_gettid(void);

/// Bits of the signal mask the kernel still holds pending for this process (ShdPnd) and for any of its
/// threads (SigPnd), bit n-1 = signal n; from /proc/self. -1 on failure.
int64_t cstress_pending_mask(void);

/// Unblocks `signo_a` and `signo_b` in the calling thread (the worker threads take thread-directed signals
/// through SignalCore's fallback handler). Returns 0 or errno.
int cstress_unblock_in_this_thread(int signo_a, int signo_b);

/// Churn: `threads` C threads that each, in a loop until cstress_churn_stop, create a short-lived thread that
/// makes and frees `allocations` blocks of 16 B...64 KiB, then join it. cstress_churn_stop returns how many
/// short-lived threads were created in all.
int cstress_churn_start(int threads, int allocations);
uint64_t cstress_churn_stop(void);

#ifdef __cplusplus
}
#endif

#endif // __linux__
#endif // CSTRESS_SUPPORT_H
