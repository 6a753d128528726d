// Private declarations shared by the CSignalShim translation units. Not visible to Swift.
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

// --- recorder (record.c) -------------------------------------------------------------------------------------

/// Counts a delivery and appends its record to the ring; copies the record to `copy` when not NULL.
/// ASYNC-SIGNAL-SAFE.
void csignal_record_delivery(int signo, const siginfo_t *info, int route, csignal_record *copy);
/// Empties the ring and sets its capacity. NOT SAFE: setup only, with no recorder running.
void csignal_ring_reset(uint32_t capacity);

// --- wait thread (waiter.c) ----------------------------------------------------------------------------------

/// Asks the wait thread to look at the ring and notify, coalescing requests. ASYNC-SIGNAL-SAFE.
void csignal_wake_waiter(void);
/// Sends the internal signal to thread `tid` of this process, retrying up to 5 s while the kernel's real-time
/// queue is full (EAGAIN). Returns 0 or errno. NOT SAFE: ordinary threads (it sleeps between tries).
int csignal_poke_thread_patiently(pid_t tid);
/// Tells the wait thread that the watched set changed and waits until it uses the new set. Setup only.
int csignal_waiter_apply_watched(void);
/// In a forked child: forgets the wait thread (it exists only in the parent) and marks the engine stopped.
/// ASYNC-SIGNAL-SAFE: atomic stores only.
void csignal_waiter_forget_after_fork(void);

/// Takes the wait role back from a borrower and keeps borrowers out until csignal_role_release (nests).
/// Setup only.
int csignal_role_reclaim(void);
void csignal_role_release(void);
/// Kernel thread id of the calling thread if it holds the wait role, else 0. ASYNC-SIGNAL-SAFE.
extern _Thread_local pid_t csignal_role_tid;

extern _Atomic uint64_t csignal_watched_mask;   // bit n-1 = signal n; written by setup, read by the waiter
extern _Atomic pid_t csignal_waiter_tid_value;  // 0 when there is no wait thread
extern _Atomic pid_t csignal_own_pid;           // getpid() cached at start (getpid is safe too; this is cheaper)

// --- handlers (handler.c) ------------------------------------------------------------------------------------

/// The fallback handler for watched signals, and the internal signal's handler. Installed by install.c.
void csignal_fallback_handler(int signo, siginfo_t *info, void *ucontext);
void csignal_internal_handler(int signo, siginfo_t *info, void *ucontext);
/// Handlers currently running on some thread (entry increments, exit decrements).
extern _Atomic int csignal_handlers_active;
/// Masks the internal handler applies to the interrupted thread, and its acknowledgement count.
extern _Atomic uint64_t csignal_spread_block;
extern _Atomic uint64_t csignal_spread_unblock;
extern _Atomic uint32_t csignal_spread_acks;
extern _Atomic int csignal_spread_active;

// --- thread dump (dump.c) ------------------------------------------------------------------------------------

/// Whether an internal-signal value is a stack-capture request (CSIGNAL_DUMP_TAG). ASYNC-SIGNAL-SAFE.
bool csignal_dump_is_request(int value);
/// Captures the interrupted thread's stack for request `value` into its slot. ASYNC-SIGNAL-SAFE.
void csignal_dump_capture(int value, void *ucontext);

/// Writes a fixed message to fd 2 and aborts. ASYNC-SIGNAL-SAFE.
_Noreturn void csignal_fatal(const char *message, unsigned long length);
#define CSIGNAL_FATAL(literal) csignal_fatal((literal), sizeof(literal) - 1)

// --- helpers -------------------------------------------------------------------------------------------------

/// Bit for signal n in a 64-bit mask.
static inline uint64_t csignal_bit(int signo) { return (uint64_t)1 << (unsigned)(signo - 1); }
/// Waits until the handlers that are running have returned (bounded: gives up after ~2 s). Setup only.
void csignal_wait_handlers_idle(void);
/// futex helpers on a 32-bit atomic word. NOT SAFE: ordinary threads (futex_wake is used by the waiter).
int csignal_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void csignal_futex_wake(_Atomic uint32_t *word);
int64_t csignal_now_ns(void);

#endif
