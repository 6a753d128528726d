// Installing and restoring dispositions, and changing the signal mask of every thread.
//
// A thread can only change its own mask (pthread_sigmask). To change the others', the spreader sends each one
// the internal signal with tgkill; its handler (csignal_internal_handler) edits the uc_sigmask of the
// interrupted context, which the kernel installs as the thread's mask when the handler returns. Threads that
// are created meanwhile inherit their creator's mask, which may be the old one, so the spreader repeats the
// pass over /proc/self/task until a pass finds no thread left to change.
//
// Everything here is NOT SAFE: setup only. The Swift engine serialises calls with its lock.
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct sigaction previous_action[CSIGNAL_SLOTS];
static struct sigaction internal_previous;
static bool internal_installed = false;
// Signals the starting thread already blocked when they were first watched: unwatch leaves them blocked.
static uint64_t blocked_before_watch = 0;
static csignal_spread_result last_spread;

int csignal_rtmin(void) { return SIGRTMIN; }
int csignal_rtmax(void) { return SIGRTMAX; }
int csignal_internal_signo(void) { return SIGRTMAX; }
pid_t csignal_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static bool watchable(int s) {
    if (s < 1 || s > SIGRTMAX) return false;
    if (s == SIGKILL || s == SIGSTOP) return false;
    if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP || s == SIGSYS) return false;
    if (s >= 32 && s < SIGRTMIN) return false;
    if (s == csignal_internal_signo()) return false;
    return true;
}

int csignal_install_internal(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = csignal_internal_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(csignal_internal_signo(), &sa, &internal_previous) != 0) return errno;
    internal_installed = true;
    return 0;
}

int csignal_restore_internal(void) {
    if (!internal_installed) return 0;
    if (sigaction(csignal_internal_signo(), &internal_previous, NULL) != 0) return errno;
    internal_installed = false;
    return 0;
}

// --- mask spreading ------------------------------------------------------------------------------------------

static int read_status_field(pid_t tid, const char *field, char *value, size_t size) {
    char path[64];
    char buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = n < 0 ? errno : 0;
    close(fd);
    if (n < 0) return err;
    buf[n] = 0;
    size_t flen = strlen(field);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            char *v = line + flen + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t len = strcspn(v, "\n");
            if (len >= size) len = size - 1;
            memcpy(value, v, len);
            value[len] = 0;
            return 0;
        }
    }
    return ENOENT;
}

int csignal_thread_status(pid_t tid, csignal_thread_report *out) {
    memset(out, 0, sizeof *out);
    out->tid = tid;
    out->is_waiter = tid == csignal_engine_waiter_tid();
    char value[64];
    int err = read_status_field(tid, "SigBlk", value, sizeof value);
    if (err != 0) return -err;
    out->blocked = strtoull(value, NULL, 16);
    if (read_status_field(tid, "voluntary_ctxt_switches", value, sizeof value) == 0) {
        out->voluntary_switches = strtoull(value, NULL, 10);
    }
    if (read_status_field(tid, "Name", value, sizeof value) == 0) {
        snprintf(out->name, sizeof out->name, "%s", value);
    }
    return 0;
}

typedef struct tid_list {
    pid_t *tids;
    size_t count, capacity;
} tid_list;

static bool tid_list_contains(const tid_list *list, pid_t tid) {
    for (size_t i = 0; i < list->count; i++)
        if (list->tids[i] == tid) return true;
    return false;
}

static int tid_list_add(tid_list *list, pid_t tid) {
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 64;
        pid_t *grown = realloc(list->tids, cap * sizeof(pid_t));
        if (!grown) return ENOMEM;
        list->tids = grown;
        list->capacity = cap;
    }
    list->tids[list->count++] = tid;
    return 0;
}

static int list_threads(tid_list *out) {
    out->count = 0;
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return errno;
    struct dirent *entry;
    int err = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        if ((err = tid_list_add(out, (pid_t)atoi(entry->d_name))) != 0) break;
    }
    closedir(dir);
    return err;
}

int csignal_spread_mask(uint64_t block_mask, uint64_t unblock_mask, csignal_spread_result *result) {
    memset(result, 0, sizeof *result);
    unblock_mask &= ~block_mask;
    const int internal = csignal_internal_signo();
    const uint64_t internal_bit = csignal_bit(internal);
    const pid_t self = csignal_gettid();

    // Our own thread first, directly.
    sigset_t set;
    sigemptyset(&set);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if (block_mask & csignal_bit(s)) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigemptyset(&set);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if (unblock_mask & csignal_bit(s)) sigaddset(&set, s);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    atomic_store_explicit(&csignal_spread_block, block_mask, memory_order_release);
    atomic_store_explicit(&csignal_spread_unblock, unblock_mask, memory_order_release);
    atomic_store_explicit(&csignal_spread_active, 1, memory_order_release);

    tid_list threads = {0}, answered = {0};
    int err = 0;
    // A thread that answered once but still shows the old mask is parked in sigsuspend/pselect with a
    // temporary mask (the kernel reports that one); its real mask was changed, so it is not asked again.
    for (uint32_t pass = 0; pass < 16; pass++) {
        result->passes++;
        if ((err = list_threads(&threads)) != 0) break;
        uint32_t sent = 0;
        atomic_store_explicit(&csignal_spread_acks, 0, memory_order_release);
        for (size_t i = 0; i < threads.count; i++) {
            pid_t tid = threads.tids[i];
            if (tid == self || tid == csignal_engine_waiter_tid() || tid_list_contains(&answered, tid)) continue;
            csignal_thread_report status;
            if (csignal_thread_status(tid, &status) != 0) continue;  // exited meanwhile
            bool done = (status.blocked & block_mask) == block_mask && (status.blocked & unblock_mask) == 0;
            if (done) continue;
            if (status.blocked & internal_bit) {
                if (pass == 0) result->unreachable++;
                continue;
            }
            if (csignal_poke_thread_patiently(tid) == 0) {
                sent++;
                result->signalled++;
                tid_list_add(&answered, tid);
            }
        }
        if (sent == 0) break;
        int64_t deadline = csignal_now_ns() + 1000000000LL;
        while (atomic_load_explicit(&csignal_spread_acks, memory_order_acquire) < sent) {
            if (csignal_now_ns() > deadline) {
                result->timed_out += sent - atomic_load(&csignal_spread_acks);
                break;
            }
            sched_yield();
        }
    }
    atomic_store_explicit(&csignal_spread_active, 0, memory_order_release);
    free(threads.tids);
    free(answered.tids);
    last_spread = *result;
    return err;
}

csignal_spread_result csignal_last_spread(void) { return last_spread; }

// --- watch / unwatch -----------------------------------------------------------------------------------------

static int engine_watch(uint64_t mask, const char **failed_call) {
    *failed_call = "csignal_engine_watch";
    if (!csignal_engine_running()) return ESRCH;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if ((mask & csignal_bit(s)) && !watchable(s)) return EINVAL;
    uint64_t watched = csignal_engine_watched();
    mask &= ~watched;
    if (mask == 0) return 0;

    sigset_t current;
    pthread_sigmask(SIG_BLOCK, NULL, &current);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = csignal_fallback_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);  // handlers never nest: a recorder is never re-entered on its own thread

    // 1. The handler first, so that from now on no delivery can meet the default action.
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(mask & csignal_bit(s))) continue;
        if (sigaction(s, &sa, &previous_action[s]) != 0) {
            int err = errno;
            for (int r = 1; r < s; r++)
                if (mask & csignal_bit(r)) sigaction(r, &previous_action[r], NULL);
            *failed_call = "sigaction";
            return err;
        }
        if (sigismember(&current, s)) blocked_before_watch |= csignal_bit(s);
        else blocked_before_watch &= ~csignal_bit(s);
    }
    // 2. The wait thread takes them from its next sigwaitinfo on.
    atomic_fetch_or_explicit(&csignal_watched_mask, mask, memory_order_acq_rel);
    int err = csignal_waiter_apply_watched();
    if (err != 0) {
        *failed_call = "csignal_waiter_apply_watched";
        return err;
    }
    // 3. Blocked everywhere: from here on the kernel queues them for the wait thread.
    csignal_spread_result result;
    err = csignal_spread_mask(mask, 0, &result);
    if (err != 0) *failed_call = "opendir(/proc/self/task)";
    return err;
}

static int engine_unwatch(uint64_t mask, const char **failed_call) {
    *failed_call = "csignal_engine_unwatch";
    if (!csignal_engine_running()) return ESRCH;
    mask &= csignal_engine_watched();
    if (mask == 0) return 0;

    // 1. Previous dispositions back. Until step 2 the wait thread still takes (and records) deliveries.
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if ((mask & csignal_bit(s)) && sigaction(s, &previous_action[s], NULL) != 0) {
            *failed_call = "sigaction";
            return errno;
        }
    }
    // 2. Out of the wait set.
    atomic_fetch_and_explicit(&csignal_watched_mask, ~mask, memory_order_acq_rel);
    int err = csignal_waiter_apply_watched();
    if (err != 0) {
        *failed_call = "csignal_waiter_apply_watched";
        return err;
    }
    csignal_wait_handlers_idle();
    // 3. Unblocked again where they were not blocked before: a delivery still pending now meets the restored
    // disposition, never silence.
    csignal_spread_result result;
    err = csignal_spread_mask(0, mask & ~blocked_before_watch, &result);
    if (err != 0) *failed_call = "opendir(/proc/self/task)";
    return err;
}

/// Runs a setup operation with the wait role taken back from any borrower.
static int with_role_reclaimed(int (*operation)(uint64_t, const char **), uint64_t mask, const char **failed_call) {
    int err = csignal_role_reclaim();
    if (err != 0) {
        *failed_call = "csignal_role_reclaim";
    } else {
        err = operation(mask, failed_call);
    }
    csignal_role_release();
    return err;
}

int csignal_engine_watch(uint64_t mask, const char **failed_call) {
    return with_role_reclaimed(engine_watch, mask, failed_call);
}

int csignal_engine_unwatch(uint64_t mask, const char **failed_call) {
    return with_role_reclaimed(engine_unwatch, mask, failed_call);
}

// --- after fork ----------------------------------------------------------------------------------------------

int csignal_engine_prepare_child(void) {
    if (!csignal_engine_running()) return 0;
    // In the parent this would tear the dispositions away from a running engine.
    if (getpid() == atomic_load_explicit(&csignal_own_pid, memory_order_relaxed)) return EINVAL;
    uint64_t watched = csignal_engine_watched();
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(watched & csignal_bit(s))) continue;
        if (sigaction(s, &previous_action[s], NULL) != 0) return errno;
        if (!(blocked_before_watch & csignal_bit(s))) sigaddset(&unblock, s);
    }
    if (internal_installed) {
        if (sigaction(csignal_internal_signo(), &internal_previous, NULL) != 0) return errno;
        internal_installed = false;
    }
    // Dispositions first, then the mask: the child's pending set starts empty, so nothing can meet the old
    // handler here, and anything that arrives from now on meets the restored disposition.
    if (sigprocmask(SIG_UNBLOCK, &unblock, NULL) != 0) return errno;
    csignal_waiter_forget_after_fork();
    return 0;
}

// --- dispositions and sending --------------------------------------------------------------------------------

int csignal_disposition(int signo) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return -errno;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) return CSIGNAL_DISP_DEFAULT;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) return CSIGNAL_DISP_IGNORE;
    return CSIGNAL_DISP_HANDLER;
}

bool csignal_is_engine_handler(int signo) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return false;
    return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == csignal_fallback_handler;
}

int csignal_tgkill(pid_t tid, int signo) {
    return syscall(SYS_tgkill, getpid(), tid, signo) == 0 ? 0 : errno;
}

int csignal_tg_sigqueue(pid_t tid, int signo, int value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signo;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info) == 0 ? 0 : errno;
}

// --- test hooks ----------------------------------------------------------------------------------------------

static _Atomic uint64_t counting_hits = 0;
static void counting_handler(int signo) {
    (void)signo;
    atomic_fetch_add_explicit(&counting_hits, 1, memory_order_relaxed);
}
int csignal_test_install_counting_handler(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = counting_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL) == 0 ? 0 : errno;
}
uint64_t csignal_test_counting_handler_hits(void) { return atomic_load(&counting_hits); }
bool csignal_test_is_counting_handler(int signo) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return false;
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == counting_handler;
}

// --- audit ---------------------------------------------------------------------------------------------------

int csignal_audit(csignal_thread_report *out, int max) {
    tid_list threads = {0};
    int err = list_threads(&threads);
    if (err != 0) {
        free(threads.tids);
        return -err;
    }
    int found = 0;
    for (size_t i = 0; i < threads.count; i++) {
        csignal_thread_report report;
        if (csignal_thread_status(threads.tids[i], &report) != 0) continue;
        if (found < max) out[found] = report;
        found++;
    }
    free(threads.tids);
    return found;
}

int csignal_test_errno_roundtrip(int signo, int value) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    errno = value;
    // The signal is unblocked in this thread and sent to it alone: the kernel runs the handler on the way back
    // from this system call, before the next instruction. syscall() leaves errno alone when it succeeds.
    syscall(SYS_tgkill, pid, tid, signo);
    int after = errno;
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return after;
}
