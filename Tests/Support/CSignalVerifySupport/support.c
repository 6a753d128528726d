// C helpers for the safety scenarios. See the header. Test code: NOT SAFE unless a function says otherwise.
#include "CSignalVerifySupport.h"
#include "CSignalShim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef _GNU_SOURCE
#error "CSignalVerifySupport must be compiled with _GNU_SOURCE"
#endif

// --- counting handler ---------------------------------------------------------------------------------------

static _Atomic uint64_t counting_hits[CSIGNAL_SLOTS];

/// ASYNC-SIGNAL-SAFE: one relaxed atomic add (a counter nobody orders anything against).
static void csv_counting_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)info;
    (void)ucontext;
    if (signo > 0 && signo < CSIGNAL_SLOTS) atomic_fetch_add_explicit(&counting_hits[signo], 1, memory_order_relaxed);
}

int csv_install_counting_handler(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = csv_counting_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL) == 0 ? 0 : errno;
}

uint64_t csv_counting_hits(int signo) {
    if (signo <= 0 || signo >= CSIGNAL_SLOTS) return 0;
    return atomic_load_explicit(&counting_hits[signo], memory_order_relaxed);
}

bool csv_is_counting_handler(int signo) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return false;
    return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == csv_counting_handler;
}

// --- sender thread ------------------------------------------------------------------------------------------

struct csv_flood {
    pthread_t thread;
    pid_t pid;
    int signo;
    uint64_t count;
    int max_seconds;
    _Atomic uint64_t sent;
    _Atomic uint64_t eagain;
    _Atomic bool stop;
    uint32_t burst;
    long pause_ns;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *flood_main(void *raw) {
    csv_flood *f = raw;
    int64_t deadline = now_ns() + (int64_t)f->max_seconds * 1000000000;
    for (uint64_t i = 1; i <= f->count && !atomic_load_explicit(&f->stop, memory_order_relaxed);) {
        union sigval value = {.sival_int = (int)i};
        if (sigqueue(f->pid, f->signo, value) == 0) {
            atomic_store_explicit(&f->sent, i, memory_order_release);
            if (f->burst > 0 && i % f->burst == 0) {
                struct timespec pause = {0, f->pause_ns};
                nanosleep(&pause, NULL);
            }
            i++;
            continue;
        }
        if (errno != EAGAIN || now_ns() > deadline) break;
        atomic_fetch_add_explicit(&f->eagain, 1, memory_order_relaxed);
        sched_yield();
    }
    return NULL;
}

csv_flood *csv_flood_start(pid_t pid, int signo, uint64_t count, int max_seconds) {
    return csv_flood_start_paced(pid, signo, count, max_seconds, 0, 0);
}

csv_flood *csv_flood_start_paced(pid_t pid, int signo, uint64_t count, int max_seconds, uint32_t burst,
                                 long pause_ns) {
    csv_flood *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->burst = burst;
    f->pause_ns = pause_ns;
    f->pid = pid;
    f->signo = signo;
    f->count = count;
    f->max_seconds = max_seconds;
    int err = pthread_create(&f->thread, NULL, flood_main, f);
    if (err != 0) {
        free(f);
        errno = err;
        return NULL;
    }
    return f;
}

void csv_flood_stop(csv_flood *f) { atomic_store_explicit(&f->stop, true, memory_order_relaxed); }

uint64_t csv_flood_sent(const csv_flood *f) { return atomic_load_explicit(&f->sent, memory_order_acquire); }
uint64_t csv_flood_eagain(const csv_flood *f) { return atomic_load_explicit(&f->eagain, memory_order_relaxed); }

uint64_t csv_flood_join(csv_flood *f, uint64_t *eagain) {
    pthread_join(f->thread, NULL);
    uint64_t sent = atomic_load(&f->sent);
    if (eagain) *eagain = atomic_load(&f->eagain);
    free(f);
    return sent;
}

// --- thread storm -------------------------------------------------------------------------------------------

static pthread_t storm_creator;
static _Atomic int storm_stop = 0;
static _Atomic uint32_t storm_released = 0;
static _Atomic int storm_created = 0;
static int storm_max = 0;
static pthread_t *storm_threads = NULL;

static void *storm_parked(void *unused) {
    (void)unused;
    while (atomic_load_explicit(&storm_released, memory_order_acquire) == 0) {
        struct timespec ts = {1, 0};
        syscall(SYS_futex, (uint32_t *)&storm_released, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    }
    return NULL;
}

static void *storm_main(void *unused) {
    (void)unused;
    while (!atomic_load_explicit(&storm_stop, memory_order_acquire)) {
        int n = atomic_load_explicit(&storm_created, memory_order_relaxed);
        if (n >= storm_max) break;
        // Small stacks: hundreds of parked threads must not cost much memory.
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        int err = pthread_create(&storm_threads[n], &attr, storm_parked, NULL);
        pthread_attr_destroy(&attr);
        if (err != 0) break;
        atomic_store_explicit(&storm_created, n + 1, memory_order_release);
    }
    return NULL;
}

int csv_storm_start(int max_threads) {
    storm_max = max_threads;
    storm_threads = calloc((size_t)max_threads, sizeof(pthread_t));
    if (!storm_threads) return ENOMEM;
    atomic_store(&storm_stop, 0);
    atomic_store(&storm_released, 0);
    atomic_store(&storm_created, 0);
    return pthread_create(&storm_creator, NULL, storm_main, NULL);
}

int csv_storm_stop(void) {
    atomic_store_explicit(&storm_stop, 1, memory_order_release);
    pthread_join(storm_creator, NULL);
    return atomic_load(&storm_created);
}

void csv_storm_release(void) {
    atomic_store_explicit(&storm_released, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&storm_released, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
    int n = atomic_load(&storm_created);
    for (int i = 0; i < n; i++) pthread_join(storm_threads[i], NULL);
    free(storm_threads);
    storm_threads = NULL;
}

// --- fork ---------------------------------------------------------------------------------------------------

/// The calling thread's mask as a 64-bit set. ASYNC-SIGNAL-SAFE (sigprocmask, sigismember).
static uint64_t current_mask(void) {
    sigset_t set;
    sigprocmask(SIG_BLOCK, NULL, &set);
    uint64_t bits = 0;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if (sigismember(&set, s) == 1) bits |= (uint64_t)1 << (s - 1);
    return bits;
}

/// Counts /proc/self/task entries with open/getdents64/close only. ASYNC-SIGNAL-SAFE in practice: raw
/// system calls, no allocation (opendir would malloc).
static int count_tasks_raw(void) {
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char buf[4096];
    int count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            if (name[0] >= '0' && name[0] <= '9') count++;
            off += reclen;
        }
    }
    close(fd);
    return count;
}

pid_t csv_fork_child(bool prepare, int report_signo, int then, int *report_fd) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
    pid_t child = fork();
    if (child < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        return -err;
    }
    if (child == 0) {
        // The child: one thread, a copy of memory. Async-signal-safe calls only from here to exec/_exit.
        close(fds[0]);
        csv_child_report r;
        memset(&r, 0, sizeof r);
        r.running_before = csignal_engine_running();
        r.blocked_before = current_mask();
        r.delivered_at_fork = csignal_delivered(report_signo);
        r.prepare_result = prepare ? csignal_engine_prepare_child() : -1;
        r.running_after = csignal_engine_running();
        r.waiter_tid_after = csignal_engine_waiter_tid();
        r.blocked_after = current_mask();
        r.disposition_after = csignal_disposition(report_signo);
        r.thread_count = count_tasks_raw();
        ssize_t ignored = write(fds[1], &r, sizeof r);
        (void)ignored;
        close(fds[1]);
        if (then == CSV_CHILD_EXEC_SLEEP) {
            char *const argv[] = {"sleep", "60", NULL};
            execv("/bin/sleep", argv);
            _exit(127);
        }
        if (then == CSV_CHILD_WAIT_KILL) {
            // Bounded: the parent kills us long before; if it never does, leave after 60 s.
            for (int i = 0; i < 60; i++) {
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
            }
            _exit(3);
        }
        _exit(0);
    }
    close(fds[1]);
    *report_fd = fds[0];
    return child;
}

int csv_read_child_report(int fd, csv_child_report *out, int timeout_ms) {
    size_t have = 0;
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    while (have < sizeof *out) {
        int left = (int)((deadline - now_ns()) / 1000000);
        if (left <= 0) return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return ETIMEDOUT;
        ssize_t n = read(fd, (char *)out + have, sizeof *out - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 ? EPIPE : errno;
        have += (size_t)n;
    }
    return 0;
}

// --- small things -------------------------------------------------------------------------------------------

int csv_proc_sigmasks(pid_t pid, uint64_t *blocked, uint64_t *ignored, uint64_t *caught) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "SigBlk:", 7) == 0) { *blocked = strtoull(line + 7, NULL, 16); found++; }
        if (strncmp(line, "SigIgn:", 7) == 0) { *ignored = strtoull(line + 7, NULL, 16); found++; }
        if (strncmp(line, "SigCgt:", 7) == 0) { *caught = strtoull(line + 7, NULL, 16); found++; }
    }
    fclose(f);
    return found == 3 ? 0 : -ENOENT;
}

static int count_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

int csv_count_threads(void) { return count_dir("/proc/self/task"); }
// opendir's own descriptor is counted too: the number is stable from call to call, which is what matters.
int csv_count_fds(void) { return count_dir("/proc/self/fd"); }

int csv_set_sigpending_limit(uint64_t limit) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_SIGPENDING, &rl) != 0) return errno;
    rl.rlim_cur = limit;
    return setrlimit(RLIMIT_SIGPENDING, &rl) == 0 ? 0 : errno;
}

int csv_queue_to_thread(pid_t tid, int signo, int value) { return csignal_tg_sigqueue(tid, signo, value); }
