#ifndef _GNU_SOURCE
#error "CStressSupport needs _GNU_SOURCE (Package.swift's cSettings define it)"
#endif
#include "CStressSupport.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(cstress_shared) <= 4096, "one page");

cstress_shared *cstress_map(const char *path, int create) {
    int fd = open(path, create ? (O_RDWR | O_CREAT | O_TRUNC) : O_RDWR, 0600);
    if (fd < 0) return NULL;
    if (create && ftruncate(fd, 4096) != 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : (cstress_shared *)p;
}

int64_t cstress_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cstress_sleep_ns(int64_t ns) {
    if (ns <= 0) return;
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {}
}

int cstress_set_sigpending_limit(uint64_t limit) {
    struct rlimit r = {limit, limit};
    return setrlimit(RLIMIT_SIGPENDING, &r) == 0 ? 0 : errno;
}

int cstress_rtmin(void) { return SIGRTMIN; }
pid_t cstress_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/// Runs `send` until it succeeds, retrying EAGAIN (counted) until `timeout_ns` passes without success.
#define RETRY_EAGAIN(call)                                                   \
    do {                                                                     \
        int64_t deadline = 0;                                                \
        unsigned streak = 0;                                                 \
        for (;;) {                                                           \
            if ((call) == 0) return 0;                                       \
            if (errno != EAGAIN) return errno;                               \
            int64_t now = cstress_now_ns();                                  \
            if (deadline == 0) deadline = now + timeout_ns;                  \
            else if (now > deadline) return EAGAIN;                          \
            (*retries)++;                                                    \
            if (++streak >= 16) cstress_sleep_ns(50000);                     \
            else sched_yield();                                              \
        }                                                                    \
    } while (0)

int cstress_kill(pid_t pid, int signo, uint64_t *retries, int64_t timeout_ns) {
    RETRY_EAGAIN(kill(pid, signo));
}

int cstress_sigqueue(pid_t pid, int signo, int value, uint64_t *retries, int64_t timeout_ns) {
    union sigval sv;
    sv.sival_int = value;
    RETRY_EAGAIN(sigqueue(pid, signo, sv));
}

int cstress_tgkill(pid_t pid, pid_t tid, int signo, uint64_t *retries, int64_t timeout_ns) {
    RETRY_EAGAIN(syscall(SYS_tgkill, pid, tid, signo));
}

int cstress_tgsigqueue(pid_t pid, pid_t tid, int signo, int value, uint64_t *retries, int64_t timeout_ns) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signo;
    info.si_code = SI_QUEUE;  // the kernel refuses si_code >= 0 and SI_TKILL from another process
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    RETRY_EAGAIN(syscall(SYS_rt_tgsigqueueinfo, pid, tid, signo, &info));
}

static uint64_t parse_hex_line(const char *line, const char *key) {
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0) return 0;
    return strtoull(line + n, NULL, 16);
}

static uint64_t pending_in(const char *path, const char *key) {
    uint64_t mask = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;  // a thread that exited meanwhile holds nothing
    char line[256];
    while (fgets(line, sizeof line, f)) mask |= parse_hex_line(line, key);
    fclose(f);
    return mask;
}

int64_t cstress_pending_mask(void) {
    uint64_t mask = pending_in("/proc/self/status", "ShdPnd:");
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", entry->d_name);
        mask |= pending_in(path, "SigPnd:");
    }
    closedir(dir);
    return (int64_t)(mask & 0x7fffffffffffffffULL);
}

int cstress_unblock_in_this_thread(int signo_a, int signo_b) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo_a);
    sigaddset(&set, signo_b);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

// MARK: - Churn

static _Atomic int churn_stop = 0;
static _Atomic uint64_t churn_created = 0;
static pthread_t churn_threads[64];
static int churn_count = 0;
static int churn_allocations = 0;

static void *short_lived(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *blocks[64] = {0};
    for (int i = 0; i < churn_allocations; i++) {
        int slot = (int)(rand_r(&seed) % 64);
        free(blocks[slot]);
        size_t size = (size_t)16 << (rand_r(&seed) % 13);  // 16 B ... 64 KiB
        blocks[slot] = malloc(size);
        if (blocks[slot]) memset(blocks[slot], i, size < 256 ? size : 256);
    }
    for (int i = 0; i < 64; i++) free(blocks[i]);
    return NULL;
}

static void *churner(void *arg) {
    uintptr_t seed = (uintptr_t)arg;
    while (!atomic_load_explicit(&churn_stop, memory_order_acquire)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, (void *)(seed++ * 2654435761u)) == 0) {
            atomic_fetch_add_explicit(&churn_created, 1, memory_order_relaxed);
            pthread_join(t, NULL);
        } else {
            cstress_sleep_ns(1000000);
        }
    }
    return NULL;
}

int cstress_churn_start(int threads, int allocations) {
    if (threads > 64) threads = 64;
    churn_allocations = allocations;
    atomic_store(&churn_stop, 0);
    for (churn_count = 0; churn_count < threads; churn_count++) {
        int err = pthread_create(&churn_threads[churn_count], NULL, churner, (void *)(uintptr_t)(churn_count + 1));
        if (err != 0) return err;
    }
    return 0;
}

uint64_t cstress_churn_stop(void) {
    atomic_store_explicit(&churn_stop, 1, memory_order_release);
    for (int i = 0; i < churn_count; i++) pthread_join(churn_threads[i], NULL);
    churn_count = 0;
    return atomic_load(&churn_created);
}
