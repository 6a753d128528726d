// Thread dump: every thread captures its own stack when the internal signal interrupts it.
//
// ┌──────────────────────────────────────────────────────────────────────────────────────────────────────────┐
// │ HOW A DUMP WORKS                                                                                           │
// │                                                                                                            │
// │ Only a thread can read its own registers, so the dumper (an ordinary thread, never a handler) asks each    │
// │ thread in turn: it arms a preallocated slot with the thread's tid and the dump's generation, then rings   │
// │ that thread with the engine's doorbell (send.c). csignal_internal_handler (handler.c) calls               │
// │ csignal_dump_maybe_capture below, which finds the slot armed for its own thread and walks the             │
// │ frame-pointer chain of the interrupted context (PC, frame pointer and stack pointer from the ucontext)     │
// │ into it, publishes it and wakes the dumper with a raw futex system call. Symbolising (dladdr) happens      │
// │ later, in the dumper, outside handler context. A doorbell that arrives after the dump withdrew the slot   │
// │ finds nothing armed and does nothing.                                                                      │
// │                                                                                                            │
// │ HANDLER CONTEXT (csignal_dump_capture and what it calls): no malloc, no locks, no stdio, no libc function  │
// │ outside the POSIX async-signal-safe list. It uses: lock-free atomics, getpid, and the raw `syscall` for    │
// │ gettid, futex and process_vm_readv. Memory is read only where the preallocated mapping table (copied from │
// │ /proc/self/maps by the dumper before any request) says the interrupted thread's stack is; when the kernel │
// │ allows process_vm_readv on ourselves, every read goes through it too, so a stale table yields EFAULT      │
// │ instead of a crash. The walk is bounded: CSIGNAL_DUMP_MAX_FRAMES frames, each frame pointer strictly      │
// │ above the previous one, 16-byte aligned, at most 1 MiB further, inside the stack mapping; each return     │
// │ address must lie in an executable mapping.                                                                 │
// │                                                                                                            │
// │ LIMITS: code built without frame pointers (most of glibc) does not extend the chain; when the frame       │
// │ pointer is not one on entry, the walk resynchronises by scanning up to 2048 words above the stack pointer │
// │ for the first plausible frame record, and says so (CSIGNAL_DUMP_FLAG_RESYNCED). The direct caller of a    │
// │ frameless leaf (a libc system-call wrapper) can be missing. Threads that block the internal signal cannot │
// │ be asked at all. x86_64 (RIP, RBP, RSP) and arm64 (pc, x29, sp; a frame record is [x29] = previous x29,   │
// │ [x29+8] = x30) are walked; elsewhere only the PC is kept (CSIGNAL_DUMP_FLAG_UNSUPPORTED).                  │
// └──────────────────────────────────────────────────────────────────────────────────────────────────────────┘
#include "internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

/// The interrupted context's program counter, frame pointer and stack pointer. ASYNC-SIGNAL-SAFE.
static bool context_registers(const ucontext_t *uc, uint64_t *pc, uint64_t *fp, uint64_t *sp) {
#if defined(__x86_64__)
    *pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
    *sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
    return true;
#elif defined(__aarch64__)
    *pc = uc->uc_mcontext.pc;
    *fp = uc->uc_mcontext.regs[29];
    *sp = uc->uc_mcontext.sp;
    return true;
#else
    (void)uc;
    *pc = *fp = *sp = 0;
    return false;
#endif
}

bool csignal_dump_supported(void) {
#if defined(__x86_64__) || defined(__aarch64__)
    return true;
#else
    return false;
#endif
}

enum {
    MAX_MAPPINGS = 8192,
    MAP_READ = 1,
    MAP_EXEC = 2,
    MAP_MAIN_STACK = 4,
    RESYNC_WORDS = 2048,
    MAX_FRAME_BYTES = 1 << 20,
    // The main thread's stack grows down after the table was read; accept RSP this far below its start.
    MAIN_STACK_GROWTH = 8 << 20,
};

typedef struct dump_mapping {
    uint64_t start, end;
    uint32_t flags;
    uint32_t pad;
} dump_mapping;

typedef struct dump_slot {
    _Atomic int32_t tid;
    _Atomic uint32_t generation;
    _Atomic int32_t state;
    csignal_dump_stack stack;
} dump_slot;

// Preallocated: about 600 KiB of zero pages, touched only by dumps.
static dump_slot slots[CSIGNAL_DUMP_MAX_THREADS];
static dump_mapping mappings[MAX_MAPPINGS];
static _Atomic uint32_t mapping_count = 0;
static _Atomic uint32_t captured_count = 0;   // futex word: slots published in this dump
static _Atomic uint32_t current_generation = 0;
static _Atomic int dump_active = 0;           // between begin and end: handlers look for a slot
static _Atomic int captures_running = 0;      // handlers inside csignal_dump_capture right now
static _Atomic int use_vm_readv = 0;
static _Atomic pid_t dump_pid = 0;            // getpid() of the dumping process, for process_vm_readv
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;

// --- memory access -------------------------------------------------------------------------------------------

/// Copies `count` words from `address`. ASYNC-SIGNAL-SAFE: a raw system call or plain loads from a range the
/// caller checked against the mapping table.
static bool read_words(uint64_t address, uint64_t *out, size_t count) {
    if (atomic_load_explicit(&use_vm_readv, memory_order_relaxed)) {
        struct iovec local = {.iov_base = out, .iov_len = count * sizeof(uint64_t)};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)address, .iov_len = count * sizeof(uint64_t)};
        long n = syscall(SYS_process_vm_readv, (long)atomic_load_explicit(&dump_pid, memory_order_relaxed),
                         &local, 1UL, &remote, 1UL, 0UL);
        return n == (long)(count * sizeof(uint64_t));
    }
    const volatile uint64_t *p = (const volatile uint64_t *)(uintptr_t)address;
    for (size_t i = 0; i < count; i++) out[i] = p[i];
    return true;
}

/// The mapping that contains `address`, or NULL. Binary search over the sorted table. ASYNC-SIGNAL-SAFE.
static const dump_mapping *find_mapping(uint64_t address) {
    // acquire: pairs with the release store in csignal_dump_begin after the table was filled.
    uint32_t lo = 0, hi = atomic_load_explicit(&mapping_count, memory_order_acquire);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (address < mappings[mid].start) hi = mid;
        else if (address >= mappings[mid].end) lo = mid + 1;
        else return &mappings[mid];
    }
    return NULL;
}

/// Whether `address` lies in an executable mapping (a plausible return address). ASYNC-SIGNAL-SAFE.
static bool is_code(uint64_t address) {
    const dump_mapping *m = find_mapping(address);
    return m != NULL && (m->flags & MAP_EXEC);
}

/// Whether `fp` may be a frame record inside [lo, hi). ASYNC-SIGNAL-SAFE.
static bool plausible_frame(uint64_t fp, uint64_t lo, uint64_t hi) {
    return (fp & 15) == 0 && fp >= lo && fp <= hi - 16 && hi >= 16;
}

/// Scans upwards from `lo` for the first word pair that looks like a frame record: a saved frame pointer
/// above it (within the stack) and a return address into code. Returns it, or 0. ASYNC-SIGNAL-SAFE.
static uint64_t resync(uint64_t lo, uint64_t hi) {
    uint64_t p = (lo + 15) & ~(uint64_t)15;
    for (int i = 0; i < RESYNC_WORDS && p + 16 <= hi; i++, p += 16) {
        uint64_t record[2];
        if (!read_words(p, record, 2)) return 0;
        if (plausible_frame(record[0], p + 16, hi) && record[0] - p <= MAX_FRAME_BYTES && is_code(record[1])) return p;
    }
    return 0;
}

/// Walks the frame-pointer chain from (pc, fp, sp) into `out`. ASYNC-SIGNAL-SAFE.
static void walk(csignal_dump_stack *out, uint64_t pc, uint64_t fp, uint64_t sp) {
    out->frame_count = 0;
    out->flags = 0;
    out->sp = sp;
    out->frames[out->frame_count++] = pc;

    const dump_mapping *stack = find_mapping(sp);
    uint64_t hi;
    if (stack != NULL && (stack->flags & MAP_READ)) {
        hi = stack->end;
    } else {
        // The main thread's stack may have grown below the start the table recorded.
        stack = NULL;
        uint32_t n = atomic_load_explicit(&mapping_count, memory_order_acquire);
        for (uint32_t i = 0; i < n; i++) {
            if ((mappings[i].flags & MAP_MAIN_STACK) && sp < mappings[i].start &&
                mappings[i].start - sp <= MAIN_STACK_GROWTH) {
                stack = &mappings[i];
                break;
            }
        }
        if (stack == NULL) {
            out->flags |= CSIGNAL_DUMP_FLAG_NO_STACK;
            return;
        }
        hi = stack->end;
    }

    // A chain breaks where code without frame pointers used RBP for something else; the walk then scans on
    // from where it stands for the next frame record, at most MAX_RESYNCS times.
    enum { MAX_RESYNCS = 4 };
    int resyncs = 0;
    uint64_t lo = sp;
    while (out->frame_count < CSIGNAL_DUMP_MAX_FRAMES) {
        if (!plausible_frame(fp, lo, hi)) {
            if (resyncs++ == MAX_RESYNCS || (fp = resync(lo, hi)) == 0) return;
            out->flags |= CSIGNAL_DUMP_FLAG_RESYNCED;
        }
        uint64_t record[2];
        if (!read_words(fp, record, 2)) {
            out->flags |= CSIGNAL_DUMP_FLAG_FAULT;
            return;
        }
        uint64_t next = record[0], ret = record[1];
        if (ret == 0) return;  // the outermost frame
        lo = fp + 16;
        if (!is_code(ret)) {
            fp = 0;  // not a frame record after all: rescan above it
            continue;
        }
        out->frames[out->frame_count++] = ret;
        // Must climb, by a bounded step; otherwise rescan above this record.
        fp = (next > lo - 16 && next - (lo - 16) <= MAX_FRAME_BYTES) ? next : 0;
    }
    out->flags |= CSIGNAL_DUMP_FLAG_TRUNCATED;
}

// --- handler side --------------------------------------------------------------------------------------------

/// Captures the interrupted thread's stack if a dump armed a slot for it. Called by csignal_internal_handler,
/// whose errno guard covers the system calls here. ASYNC-SIGNAL-SAFE: a bounded scan of the slots.
void csignal_dump_maybe_capture(void *ucontext, pid_t self) {
    if (ucontext == NULL || !atomic_load_explicit(&dump_active, memory_order_acquire)) return;
    // Counted before the checks, so that the dumper never rewrites the mapping table under a capture.
    atomic_fetch_add_explicit(&captures_running, 1, memory_order_acq_rel);
    uint32_t generation = atomic_load_explicit(&current_generation, memory_order_acquire);
    for (uint32_t index = 0; index < CSIGNAL_DUMP_MAX_THREADS; index++) {
        dump_slot *slot = &slots[index];
        if (atomic_load_explicit(&slot->tid, memory_order_acquire) != self) continue;
        if (atomic_load_explicit(&slot->generation, memory_order_acquire) != generation) continue;
        int32_t expected = CSIGNAL_DUMP_REQUESTED;
        // A slot withdrawn by the dumper (it gave up waiting) is left alone.
        if (!atomic_compare_exchange_strong_explicit(&slot->state, &expected, CSIGNAL_DUMP_CAPTURING,
                                                     memory_order_acq_rel, memory_order_acquire)) {
            continue;
        }
        uint64_t pc, fp, sp;
        if (context_registers((const ucontext_t *)ucontext, &pc, &fp, &sp)) {
            walk(&slot->stack, pc, fp, sp);
        } else {
            slot->stack.frame_count = 0;
            slot->stack.flags = CSIGNAL_DUMP_FLAG_UNSUPPORTED;
        }
        slot->stack.tid = self;
        // release: the frames written above are visible to the dumper that sees CAPTURED (acquire).
        atomic_store_explicit(&slot->state, CSIGNAL_DUMP_CAPTURED, memory_order_release);
        atomic_fetch_add_explicit(&captured_count, 1, memory_order_release);
        csignal_futex_wake(&captured_count);
    }
    atomic_fetch_sub_explicit(&captures_running, 1, memory_order_acq_rel);
}

// --- dumper side (NOT SAFE: ordinary thread) -----------------------------------------------------------------

/// NOT SAFE: ordinary thread. Reads /proc/self/maps into the table.
static int load_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL) return errno;
    char line[512];
    uint32_t n = 0;
    while (n < MAX_MAPPINGS && fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end;
        char perms[8] = {0};
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3) continue;
        uint32_t flags = 0;
        if (perms[0] == 'r') flags |= MAP_READ;
        if (perms[2] == 'x') flags |= MAP_EXEC;
        if (strstr(line, "[stack]") != NULL) flags |= MAP_MAIN_STACK;
        mappings[n].start = start;
        mappings[n].end = end;
        mappings[n].flags = flags;
        n++;
    }
    fclose(f);
    // release: publishes the rows to handlers (find_mapping loads the count with acquire).
    atomic_store_explicit(&mapping_count, n, memory_order_release);
    return 0;
}

/// NOT SAFE: ordinary thread. Can this process read its own memory with process_vm_readv? (Container
/// seccomp profiles may refuse the call.)
static bool probe_vm_readv(void) {
    uint64_t source[2] = {0x5157414c4b455221ull, 42}, copy[2] = {0, 0};
    struct iovec local = {.iov_base = copy, .iov_len = sizeof copy};
    struct iovec remote = {.iov_base = source, .iov_len = sizeof source};
    long n = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1UL, &remote, 1UL, 0UL);
    return n == (long)sizeof copy && copy[0] == source[0] && copy[1] == source[1];
}

/// NOT SAFE: any thread (see CSignalShim.h).
int csignal_dump_begin(void) {
    if (!csignal_engine_running()) return ESRCH;  // the internal handler is installed only while it runs
    pthread_mutex_lock(&dump_lock);
    // A capture from an abandoned request may still be walking: never rewrite the table under it.
    int64_t deadline = csignal_now_ns() + 1000000000LL;
    while (atomic_load_explicit(&captures_running, memory_order_acquire) != 0) {
        if (csignal_now_ns() > deadline) {
            pthread_mutex_unlock(&dump_lock);
            return EBUSY;
        }
        sched_yield();
    }
    atomic_store_explicit(&dump_pid, getpid(), memory_order_relaxed);
    atomic_store_explicit(&use_vm_readv, probe_vm_readv() ? 1 : 0, memory_order_relaxed);
    int err = load_mappings();
    if (err != 0) {
        pthread_mutex_unlock(&dump_lock);
        return err;
    }
    atomic_fetch_add_explicit(&current_generation, 1, memory_order_acq_rel);
    atomic_store_explicit(&captured_count, 0, memory_order_release);
    atomic_store_explicit(&dump_active, 1, memory_order_release);
    return 0;
}

/// NOT SAFE: any thread (see CSignalShim.h).
int csignal_dump_request(uint32_t index, pid_t tid) {
    if (index >= CSIGNAL_DUMP_MAX_THREADS) return EINVAL;
    dump_slot *slot = &slots[index];
    if (atomic_load_explicit(&slot->state, memory_order_acquire) == CSIGNAL_DUMP_CAPTURING) return EBUSY;
    uint32_t generation = atomic_load_explicit(&current_generation, memory_order_acquire);
    memset(&slot->stack, 0, sizeof slot->stack);
    atomic_store_explicit(&slot->state, CSIGNAL_DUMP_EMPTY, memory_order_release);
    atomic_store_explicit(&slot->tid, tid, memory_order_relaxed);
    atomic_store_explicit(&slot->generation, generation, memory_order_relaxed);
    // release: the slot's tid and generation are visible before any handler can see REQUESTED.
    atomic_store_explicit(&slot->state, CSIGNAL_DUMP_REQUESTED, memory_order_release);
    int err = csignal_doorbell(tid);
    if (err != 0) atomic_store_explicit(&slot->state, CSIGNAL_DUMP_EMPTY, memory_order_release);
    return err;
}

/// NOT SAFE: any thread. Keeps a frame of its own: __builtin_frame_address(0) makes the compiler set up RBP.
__attribute__((noinline)) int csignal_dump_capture_self(uint32_t index) {
    if (index >= CSIGNAL_DUMP_MAX_THREADS) return EINVAL;
    dump_slot *slot = &slots[index];
    uint64_t *frame = (uint64_t *)__builtin_frame_address(0);
    atomic_store_explicit(&slot->tid, (pid_t)syscall(SYS_gettid), memory_order_relaxed);
    // frame[0] is the caller's frame pointer, frame[1] our return address into the caller (the frame record
    // has this layout on x86_64 and arm64 alike).
    walk(&slot->stack, frame[1], frame[0], (uint64_t)(uintptr_t)frame);
    slot->stack.tid = atomic_load_explicit(&slot->tid, memory_order_relaxed);
    atomic_store_explicit(&slot->state, CSIGNAL_DUMP_CAPTURED, memory_order_release);
    return 0;
}

/// NOT SAFE: any thread (see CSignalShim.h).
uint32_t csignal_dump_wait(uint32_t expected, int64_t timeout_ns) {
    int64_t deadline = csignal_now_ns() + timeout_ns;
    for (;;) {
        uint32_t have = atomic_load_explicit(&captured_count, memory_order_acquire);
        if (have >= expected) return have;
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) return have;
        csignal_futex_wait(&captured_count, have, left);
    }
}

/// NOT SAFE: any thread (see CSignalShim.h).
int32_t csignal_dump_take(uint32_t index, csignal_dump_stack *out) {
    if (index >= CSIGNAL_DUMP_MAX_THREADS) return CSIGNAL_DUMP_EMPTY;
    dump_slot *slot = &slots[index];
    int32_t expected = CSIGNAL_DUMP_REQUESTED;
    // An unanswered request is withdrawn: a late delivery then finds the slot empty and does nothing.
    if (atomic_compare_exchange_strong_explicit(&slot->state, &expected, CSIGNAL_DUMP_EMPTY, memory_order_acq_rel,
                                                memory_order_acquire)) {
        return CSIGNAL_DUMP_REQUESTED;
    }
    if (expected == CSIGNAL_DUMP_CAPTURED) {
        *out = slot->stack;
        atomic_store_explicit(&slot->state, CSIGNAL_DUMP_EMPTY, memory_order_release);
    }
    return expected;
}

/// NOT SAFE: any thread (see CSignalShim.h).
int32_t csignal_dump_state(uint32_t index) {
    if (index >= CSIGNAL_DUMP_MAX_THREADS) return CSIGNAL_DUMP_EMPTY;
    return atomic_load_explicit(&slots[index].state, memory_order_acquire);
}

/// NOT SAFE: any thread (see CSignalShim.h).
void csignal_dump_end(void) {
    atomic_store_explicit(&dump_active, 0, memory_order_release);
    pthread_mutex_unlock(&dump_lock);
}

/// NOT SAFE: any thread (see CSignalShim.h).
bool csignal_dump_uses_vm_readv(void) { return atomic_load_explicit(&use_vm_readv, memory_order_relaxed) != 0; }

/// NOT SAFE: any thread (see CSignalShim.h).
int csignal_dump_symbolize(uint64_t address, csignal_symbol *out) {
    memset(out, 0, sizeof *out);
    Dl_info info;
    if (dladdr((void *)(uintptr_t)address, &info) == 0) return 0;
    out->image_base = (uint64_t)(uintptr_t)info.dli_fbase;
    out->symbol_address = (uint64_t)(uintptr_t)info.dli_saddr;
    if (info.dli_fname != NULL) snprintf(out->image, sizeof out->image, "%s", info.dli_fname);
    if (info.dli_sname != NULL) snprintf(out->symbol, sizeof out->symbol, "%s", info.dli_sname);
    return 1;
}
