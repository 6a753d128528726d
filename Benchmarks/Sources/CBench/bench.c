// The ping-pong page, the receiver's "user code saw it" hook and the driver's sender.
// Nothing here runs in a signal handler except cbench_seen / cbench_seen_many, which the raw C sigaction
// receiver calls from its handler: they use only clock_gettime, atomic builtins and the futex system call,
// all async-signal-safe.
#ifndef _GNU_SOURCE
#error "CBench needs _GNU_SOURCE (Package.swift's cSettings define it)"
#endif
#include "CBench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Offsets the Python, Go and Rust receivers (Benchmarks/Receivers/) hard-code.
_Static_assert(offsetof(cbench_shm, ready) == 0, "Receivers/: READY");
_Static_assert(offsetof(cbench_shm, wake_driver) == 8, "Receivers/: WAKE_DRIVER");
_Static_assert(offsetof(cbench_shm, slot) == 64, "Receivers/: SLOT_BASE");
_Static_assert(sizeof(cbench_slot) == 64, "Receivers/: SLOT_SIZE");
_Static_assert(offsetof(cbench_slot, received) == 0, "Receivers/: RECEIVED");
_Static_assert(offsetof(cbench_slot, recv_ns) == 8, "Receivers/: RECV_NS");
_Static_assert(offsetof(cbench_slot, last_value) == 16, "Receivers/: LAST_VALUE");
_Static_assert(offsetof(cbench_slot, out_of_order) == 24, "Receivers/: OUT_OF_ORDER");
_Static_assert(offsetof(cbench_slot, first_ns) == 32, "Receivers/: FIRST_NS");
_Static_assert(sizeof(cbench_shm) <= CBENCH_SHM_SIZE, "one page");

cbench_shm *cbench_map(const char *path, int create) {
    int fd = open(path, create ? (O_RDWR | O_CREAT | O_TRUNC) : O_RDWR, 0600);
    if (fd < 0) return NULL;
    if (create && ftruncate(fd, CBENCH_SHM_SIZE) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    void *p = mmap(NULL, CBENCH_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        errno = e;
        return NULL;
    }
    if (create) memset(p, 0, CBENCH_SHM_SIZE);
    return (cbench_shm *)p;
}

int64_t cbench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cbench_rt_signal(void) { return SIGRTMIN + 1; }

static void wake(uint64_t *word) {
    // A shared (not PRIVATE) futex: the driver sleeps on the same physical page from another process.
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

// Async-signal-safe (the C sigaction receiver calls it from its handler).
void cbench_seen(cbench_shm *shm, int slot, uint64_t value) {
    int64_t now = cbench_now_ns();
    cbench_slot *s = &shm->slot[slot];
    uint64_t n = __atomic_load_n(&s->received, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&s->recv_ns, now, __ATOMIC_RELAXED);
    if (n == 1) __atomic_store_n(&s->first_ns, now, __ATOMIC_RELAXED);
    if (value != 0) {
        uint64_t last = __atomic_load_n(&s->last_value, __ATOMIC_RELAXED);
        if (value != last + 1) __atomic_store_n(&s->out_of_order, s->out_of_order + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&s->last_value, value, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&s->received, n, __ATOMIC_RELEASE);
    if (__atomic_load_n(&shm->wake_driver, __ATOMIC_ACQUIRE)) wake(&s->received);
}

void cbench_seen_many(cbench_shm *shm, int slot, uint64_t count) {
    int64_t now = cbench_now_ns();
    cbench_slot *s = &shm->slot[slot];
    uint64_t before = __atomic_load_n(&s->received, __ATOMIC_RELAXED);
    __atomic_store_n(&s->recv_ns, now, __ATOMIC_RELAXED);
    if (before == 0) __atomic_store_n(&s->first_ns, now, __ATOMIC_RELAXED);
    __atomic_store_n(&s->received, before + count, __ATOMIC_RELEASE);
    if (__atomic_load_n(&shm->wake_driver, __ATOMIC_ACQUIRE)) wake(&s->received);
}

void cbench_publish_results(cbench_shm *shm, const double *values, int count) {
    for (int i = 0; i < count && i < 8; i++) shm->result[i] = values[i];
    __atomic_store_n(&shm->result_ready, 1, __ATOMIC_RELEASE);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void cbench_spin_ns(int64_t ns) {
    int64_t end = cbench_now_ns() + ns;
    while (cbench_now_ns() < end) cpu_relax();
}

int cbench_ping(cbench_shm *shm, int slot, pid_t pid, int signo, int value, int64_t spin_ns, int64_t timeout_ns,
                int64_t *latency_ns) {
    cbench_slot *s = &shm->slot[slot];
    uint64_t before = __atomic_load_n(&s->received, __ATOMIC_ACQUIRE);
    union sigval sv;
    sv.sival_int = value;
    int64_t sent;
    for (;;) {
        sent = cbench_now_ns();  // the stamp: nothing but the system call between it and the send
        if (sigqueue(pid, signo, sv) == 0) break;
        if (errno != EAGAIN) return errno;
        sched_yield();
    }
    int64_t spin_end = sent + spin_ns;
    while (spin_ns > 0) {
        if (__atomic_load_n(&s->received, __ATOMIC_ACQUIRE) != before) {
            *latency_ns = __atomic_load_n(&s->recv_ns, __ATOMIC_RELAXED) - sent;
            return 0;
        }
        if (cbench_now_ns() >= spin_end) break;
        cpu_relax();
    }
    int64_t deadline = sent + timeout_ns;
    for (;;) {
        uint64_t now_count = __atomic_load_n(&s->received, __ATOMIC_ACQUIRE);
        if (now_count != before) {
            *latency_ns = __atomic_load_n(&s->recv_ns, __ATOMIC_RELAXED) - sent;
            return 0;
        }
        int64_t left = deadline - cbench_now_ns();
        if (left <= 0) return ETIMEDOUT;
        // Bounded sleep: receivers that cannot FUTEX_WAKE (Python) are still noticed within 100 µs.
        struct timespec ts = {0, left < 100000 ? left : 100000};
        syscall(SYS_futex, (uint32_t *)&s->received, FUTEX_WAIT, (uint32_t)before, &ts, NULL, 0);
    }
}

cbench_flood_result cbench_flood(pid_t pid, int signo, uint64_t count, int queued) {
    cbench_flood_result r = {0, 0, 0, 0};
    r.start_ns = cbench_now_ns();
    for (uint64_t i = 1; i <= count; i++) {
        for (;;) {
            int rc;
            if (queued) {
                union sigval sv;
                sv.sival_int = (int)i;
                rc = sigqueue(pid, signo, sv);
            } else {
                rc = kill(pid, signo);
            }
            if (rc == 0) break;
            if (errno != EAGAIN) {
                r.error = errno;
                r.sent_ns = cbench_now_ns();
                return r;
            }
            r.retries++;
            sched_yield();
        }
    }
    r.sent_ns = cbench_now_ns();
    return r;
}

void cbench_sleep_ns(int64_t ns) {
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {}
}

int64_t cbench_process_cpu_ns(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL) return -1;
    int64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char file[128];
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", (int)pid, entry->d_name);
        FILE *f = fopen(file, "r");
        if (f == NULL) continue;  // the thread exited meanwhile
        long long on_cpu = 0;
        if (fscanf(f, "%lld", &on_cpu) == 1) total += on_cpu;
        fclose(f);
    }
    closedir(dir);
    return total;
}

int64_t cbench_process_sleeps(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL) return -1;
    int64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char file[128];
        snprintf(file, sizeof file, "/proc/%d/task/%s/status", (int)pid, entry->d_name);
        FILE *f = fopen(file, "r");
        if (f == NULL) continue;
        char line[256];
        long long n;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &n) == 1) total += n;
        }
        fclose(f);
    }
    closedir(dir);
    return total;
}
