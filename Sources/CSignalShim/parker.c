// libdispatch's parked main thread, taken over so that it stops taking watched signals.
//
// ┌──────────────────────────────────────────────────────────────────────────────────────────────────────────┐
// │ WHY THIS FILE EXISTS                                                                                       │
// │                                                                                                            │
// │ A Swift program with an async `@main` hands its main thread to libdispatch (dispatch_main). On Linux,     │
// │ libdispatch ends the main thread's useful life in _dispatch_sigsuspend():                                  │
// │                                                                                                            │
// │     static const sigset_t mask;            // empty                                                        │
// │     pthread_sigmask(SIG_SETMASK, &mask, NULL);                                                              │
// │     for (;;) sigsuspend(&mask);                                                                             │
// │                                                                                                            │
// │ sigsuspend replaces the thread's mask with that empty set while it sleeps, whatever mask the engine gives  │
// │ it, and the kernel prefers the main thread for process-directed signals. So in every async program the     │
// │ main thread dequeues watched signals through the fallback handler while the role holder dequeues them with │
// │ sigwaitinfo: two dequeuers, records out of send order, and no back-pressure (a handler cannot refuse a     │
// │ signal the kernel already dequeued).                                                                       │
// │                                                                                                            │
// │ That thread never returns from the loop, so nothing is lost by moving it into an equivalent loop of ours   │
// │ that keeps the watched signals blocked: csignal_parker_loop below, which sleeps in sigsuspend on the       │
// │ watched set (everything else stays deliverable there, as under libdispatch). The move is made by the       │
// │ internal handler running on that thread: it rewrites the interrupted context's program counter and stack  │
// │ pointer (as Go's runtime does to inject a call), and the kernel resumes the thread in our loop when the    │
// │ handler returns.                                                                                           │
// │                                                                                                            │
// │ The engine looks when it starts watching, and again when the fallback handler ran on the main thread    │
// │ (an async program's main thread may park a moment after the engine started): the wait thread does it.  │
// │ It is done only when it is certain to be that loop: setup reads /proc/self/task/PID/syscall and finds     │
// │ rt_sigsuspend on a mask that lies inside libdispatch.so and is empty; the handler then checks that the    │
// │ interrupted instruction follows a system-call instruction, that the call returned EINTR, and (x86_64) that │
// │ its first argument is that mask, or (arm64) that the call number is rt_sigsuspend. Anything else — another│
// │ handler running on the main thread, a different sigsuspend — is left alone, and the engine reports the    │
// │ main thread as a competing dequeuer instead.                                                              │
// └──────────────────────────────────────────────────────────────────────────────────────────────────────────┘
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>

static _Atomic pid_t requested_tid = 0;
/// Set by the fallback handler when it runs on the main thread: a sign that the main thread waits with a mask
/// of its own (perhaps libdispatch's park, entered after the engine's last look). The wait thread then looks.
static _Atomic int hinted = 0;
/// A hint-driven attempt found no libdispatch park: hints are ignored until setup looks again.
static _Atomic int hints_off = 0;
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;
/// Where libdispatch is mapped (found by setup): libdispatch's park mask lies in it, so only a main thread
/// interrupted in a system call whose first argument points there may be parked.
static _Atomic uintptr_t dispatch_low = 0, dispatch_high = 0;
static _Atomic uint64_t requested_mask = 0;
static _Atomic uint32_t adopted_tid = 0;  // futex word: the parker's tid once it runs our loop
#ifdef CSIGNAL_TESTING
static _Atomic uint64_t foreign_mask_for_test = 0;
static _Atomic int looks_after_hints = 0, looks_abandoned = 0;
#endif

/// ASYNC-SIGNAL-SAFE.
pid_t csignal_parker_tid(void) { return (pid_t)atomic_load_explicit(&adopted_tid, memory_order_acquire); }

/// The engine's park loop. Runs on the adopted thread in ordinary context (never a handler), forever.
/// Its real mask blocks the watched set and the internal signal; sigsuspend lets the internal signal in, so a
/// doorbell that comes while the loop builds its mask waits for the sigsuspend instead of slipping past it.
__attribute__((noreturn, noinline)) static void csignal_parker_loop(void) {
    pid_t self = (pid_t)syscall(SYS_gettid);
    atomic_store_explicit(&adopted_tid, (uint32_t)self, memory_order_release);
    csignal_futex_wake(&adopted_tid);
    for (;;) {
        uint32_t gen = csignal_masks_generation();
        uint64_t block = csignal_masks_wanted();
        int internal = csignal_internal_signo();
        sigset_t real, during;
        csignal_sigset_from_mask(&during, block);
        real = during;
        if (internal > 0) sigaddset(&real, internal);
        pthread_sigmask(SIG_SETMASK, &real, NULL);
        csignal_masks_ack(self, gen);
        CSIGNAL_INJECT("parker.before-sleep");
        sigsuspend(&during);
    }
}

/// Whether `ucontext` is a thread interrupted right after returning EINTR from rt_sigsuspend on `mask`.
/// ASYNC-SIGNAL-SAFE: reads registers and two bytes of code.
static bool interrupted_in_sigsuspend(const ucontext_t *uc, uint64_t mask) {
#if defined(__x86_64__)
    const uint8_t *pc = (const uint8_t *)(uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    return pc[-2] == 0x0f && pc[-1] == 0x05 &&  // syscall
           (int64_t)uc->uc_mcontext.gregs[REG_RAX] == -EINTR && (uint64_t)uc->uc_mcontext.gregs[REG_RDI] == mask;
#elif defined(__aarch64__)
    (void)mask;  // x0 holds the result by now
    const uint32_t *pc = (const uint32_t *)(uintptr_t)uc->uc_mcontext.pc;
    return pc[-1] == 0xd4000001u &&  // svc #0
           uc->uc_mcontext.regs[8] == SYS_rt_sigsuspend && (int64_t)uc->uc_mcontext.regs[0] == -EINTR;
#else
    (void)uc;
    (void)mask;
    return false;
#endif
}

/// ASYNC-SIGNAL-SAFE.
void csignal_parker_maybe_take(void *ucontext, pid_t self) {
    if (ucontext == NULL || atomic_load_explicit(&requested_tid, memory_order_acquire) != self) return;
    if (atomic_load_explicit(&adopted_tid, memory_order_acquire) != 0) return;
    ucontext_t *uc = (ucontext_t *)ucontext;
    if (!interrupted_in_sigsuspend(uc, atomic_load_explicit(&requested_mask, memory_order_acquire))) return;
    atomic_store_explicit(&requested_tid, 0, memory_order_release);
    // Resume in our loop, with the watched set and the internal signal blocked from its first instruction. The
    // new stack pointer lies above the interrupted one, inside frames that will never be returned to (the
    // kernel put this handler's frame below it).
    sigset_t real;
    csignal_sigset_from_mask(&real, csignal_masks_wanted());
    sigaddset(&real, csignal_internal_signo());
    uc->uc_sigmask = real;
#if defined(__x86_64__)
    uint64_t top = ((uint64_t)uc->uc_mcontext.gregs[REG_RSP] + 256) & ~(uint64_t)15;
    *(uint64_t *)(uintptr_t)(top - 8) = 0;  // a null return address ends the call chain for unwinders
    uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(top - 8);
    uc->uc_mcontext.gregs[REG_RBP] = 0;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)csignal_parker_loop;
#elif defined(__aarch64__)
    uint64_t top = (uc->uc_mcontext.sp + 256) & ~(uint64_t)15;
    uc->uc_mcontext.sp = top;
    uc->uc_mcontext.regs[29] = 0;
    uc->uc_mcontext.regs[30] = 0;
    uc->uc_mcontext.pc = (uint64_t)(uintptr_t)csignal_parker_loop;
#endif
}

/// Whether `address` points at an empty signal set inside libdispatch (or the test's stand-in).
static bool is_dispatch_park_mask(uint64_t address) {
    if (address == 0) return false;
#ifdef CSIGNAL_TESTING
    uint64_t foreign = atomic_load_explicit(&foreign_mask_for_test, memory_order_relaxed);
    if (foreign != 0) return address == foreign;
#endif
    Dl_info info;
    if (dladdr((void *)(uintptr_t)address, &info) == 0 || info.dli_fname == NULL) return false;
    const char *name = strrchr(info.dli_fname, '/');
    name = name != NULL ? name + 1 : info.dli_fname;
    if (strncmp(name, "libdispatch.so", 14) != 0) return false;
    const uint8_t *bytes = (const uint8_t *)(uintptr_t)address;
    for (int i = 0; i < 8; i++)
        if (bytes[i] != 0) return false;
    return true;
}

#if defined(__x86_64__) || defined(__aarch64__)
static pid_t attempt(int64_t timeout_ns, int64_t patience_ns, bool (*give_up)(void), bool *gave_up);
#endif

/// Whether `ucontext` may be the main thread interrupted in libdispatch's park: a system call that returned
/// EINTR, whose first argument points into libdispatch (x86_64), or that was rt_sigsuspend (arm64). Setup
/// confirms it through /proc before anything is taken over. ASYNC-SIGNAL-SAFE: reads registers and, only when
/// they match, two bytes of code.
static bool may_be_parked(const void *ucontext) {
    if (ucontext == NULL) return false;
    const ucontext_t *uc = (const ucontext_t *)ucontext;
#if defined(__x86_64__)
    if ((int64_t)uc->uc_mcontext.gregs[REG_RAX] != -EINTR) return false;
    uintptr_t arg0 = (uintptr_t)uc->uc_mcontext.gregs[REG_RDI];
    bool inside = arg0 >= atomic_load_explicit(&dispatch_low, memory_order_relaxed) &&
                  arg0 < atomic_load_explicit(&dispatch_high, memory_order_relaxed);
#ifdef CSIGNAL_TESTING
    uint64_t foreign = atomic_load_explicit(&foreign_mask_for_test, memory_order_relaxed);
    if (foreign != 0) inside = arg0 == foreign;
#endif
    if (!inside) return false;
    const uint8_t *pc = (const uint8_t *)(uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    return pc[-2] == 0x0f && pc[-1] == 0x05;  // syscall
#elif defined(__aarch64__)
    if ((int64_t)uc->uc_mcontext.regs[0] != -EINTR || uc->uc_mcontext.regs[8] != SYS_rt_sigsuspend) return false;
    const uint32_t *pc = (const uint32_t *)(uintptr_t)uc->uc_mcontext.pc;
    return pc[-1] == 0xd4000001u;  // svc #0
#else
    (void)uc;
    return false;
#endif
}

/// ASYNC-SIGNAL-SAFE.
void csignal_parker_hint(pid_t self, const void *ucontext) {
    if (self != atomic_load_explicit(&csignal_own_pid, memory_order_relaxed)) return;
    if (atomic_load_explicit(&adopted_tid, memory_order_relaxed) != 0) return;
    if (atomic_load_explicit(&hints_off, memory_order_relaxed)) return;
    if (!may_be_parked(ucontext)) return;
    // The wait thread looks, whether it holds the role or lent it: ring it (the record's own ring may go to a
    // borrower).
    if (atomic_exchange_explicit(&hinted, 1, memory_order_acq_rel) == 0) {
        csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
    }
}

bool csignal_parker_take_hint(void) {
    return atomic_exchange_explicit(&hinted, 0, memory_order_acq_rel) != 0 &&
           !atomic_load_explicit(&hints_off, memory_order_acquire);
}

/// NOT SAFE: the wait thread, after csignal_parker_take_hint.
void csignal_parker_adopt_after_hint(int64_t timeout_ns, bool (*give_up)(void)) {
#if defined(__x86_64__) || defined(__aarch64__)
    pthread_mutex_lock(&adopt_lock);
    bool gave_up = false;
    pid_t adopted = attempt(timeout_ns, timeout_ns, give_up, &gave_up);
    pthread_mutex_unlock(&adopt_lock);
#ifdef CSIGNAL_TESTING
    atomic_fetch_add(&looks_after_hints, 1);
    if (gave_up) atomic_fetch_add(&looks_abandoned, 1);
#endif
    if (gave_up) {
        atomic_store_explicit(&hinted, 1, memory_order_release);  // look again once the other work is done
    } else if (adopted == 0) {
        atomic_store_explicit(&hints_off, 1, memory_order_release);
    }
#else
    (void)timeout_ns;
    (void)give_up;
#endif
}

/// dl_iterate_phdr's visitor: the extent of libdispatch's loaded segments.
static int find_dispatch(struct dl_phdr_info *info, size_t size, void *out) {
    (void)size;
    const char *name = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
    name = name != NULL ? name + 1 : info->dlpi_name;
    if (name == NULL || strncmp(name, "libdispatch.so", 14) != 0) return 0;
    uintptr_t *range = out;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_LOAD) continue;
        uintptr_t low = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        uintptr_t high = low + info->dlpi_phdr[i].p_memsz;
        if (range[0] == 0 || low < range[0]) range[0] = low;
        if (high > range[1]) range[1] = high;
    }
    return 1;
}

/// NOT SAFE: ordinary threads (setup, or the wait thread after a hint). Serialised by a mutex.
pid_t csignal_parker_adopt(int64_t timeout_ns) {
    pid_t done = csignal_parker_tid();
    if (done != 0) return done;
#if !defined(__x86_64__) && !defined(__aarch64__)
    return 0;
#else
    pthread_mutex_lock(&adopt_lock);
    uintptr_t range[2] = {0, 0};
    dl_iterate_phdr(find_dispatch, range);  // again at every look: libdispatch may have been loaded since
    atomic_store_explicit(&dispatch_low, range[0], memory_order_relaxed);
    atomic_store_explicit(&dispatch_high, range[1], memory_order_relaxed);
    atomic_store_explicit(&hints_off, 0, memory_order_release);
    pid_t adopted = attempt(timeout_ns, 0, NULL, NULL);
    pthread_mutex_unlock(&adopt_lock);
    return adopted;
#endif
}

#if defined(__x86_64__) || defined(__aarch64__)
/// One attempt: only when the main thread sits in rt_sigsuspend on libdispatch's empty mask. With `patience`,
/// looks again every millisecond for that long (after a hint, the main thread may still be in the handler that
/// gave it), unless `give_up` says to stop (then sets `*gave_up`).
static pid_t attempt(int64_t timeout_ns, int64_t patience_ns, bool (*give_up)(void), bool *gave_up) {
    pid_t main_tid = getpid();
    uint64_t mask = 0;
    if (csignal_parker_tid() != 0) return csignal_parker_tid();
    int64_t patience_end = csignal_now_ns() + patience_ns;
    for (;;) {
        if (csignal_thread_syscall(main_tid, &mask) == SYS_rt_sigsuspend && is_dispatch_park_mask(mask)) break;
        if (csignal_now_ns() >= patience_end) return 0;
        CSIGNAL_INJECT("parker.look-again");
        if (give_up != NULL && give_up()) {
            *gave_up = true;
            return 0;
        }
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    atomic_store_explicit(&requested_mask, mask, memory_order_release);
    atomic_store_explicit(&requested_tid, main_tid, memory_order_release);
    int64_t deadline = csignal_now_ns() + timeout_ns;
    if (csignal_ring_patiently(main_tid, deadline) == 0) {
        for (;;) {
            if (csignal_parker_tid() != 0) break;
            int64_t left = deadline - csignal_now_ns();
            if (left <= 0) break;
            csignal_futex_wait(&adopted_tid, 0, left);
        }
    }
    atomic_store_explicit(&requested_tid, 0, memory_order_release);
    return csignal_parker_tid();
}
#endif

#ifdef CSIGNAL_TESTING
void csignal_parker_test_looks(int *after_hints, int *abandoned) {
    *after_hints = atomic_load(&looks_after_hints);
    *abandoned = atomic_load(&looks_abandoned);
}

void csignal_parker_set_foreign_mask(const void *mask) {
    atomic_store_explicit(&foreign_mask_for_test, (uint64_t)(uintptr_t)mask, memory_order_relaxed);
}
#endif
