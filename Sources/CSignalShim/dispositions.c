// Dispositions: the engine's handlers in, the previous ones back, and the choice of the internal signal.
//
// The rule: the engine never overwrites a disposition it did not install. It saves each signal's disposition
// when it installs its handler, and at unwatch/stop puts it back only if the signal still carries the engine's
// handler; if someone else installed one meanwhile, theirs stays.
//
// The internal signal is chosen once per start: SIGRTMAX, or when that one is taken (a handler or SIG_IGN is
// installed) or refused by sigaction (valgrind reserves SIGRTMAX, so do some qemu-user hosts), the highest
// real-time signal below it that is free. At stop every pending copy is discarded before its previous
// disposition comes back: setting SIG_IGN discards a pending signal in every thread (POSIX, and Linux does it),
// so no stray doorbell can meet SIG_DFL later and kill the process.
//
// NOT SAFE: setup only, except csignal_dispositions_restore_in_child (async-signal-safe, for a forked child).
#include "internal.h"

#include <string.h>

static struct sigaction previous_action[CSIGNAL_SLOTS];
static uint64_t installed = 0;  // signals whose previous_action is saved and whose handler is ours
static struct sigaction internal_previous;
static int internal_installed = 0;  // the internal signal whose previous disposition is saved, or 0

static struct sigaction engine_action(void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    // SA_ONSTACK: threads with an alternate signal stack (Go's, small-stack threads) run us there.
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);  // handlers never nest: a recorder is never re-entered on its own thread
    return sa;
}

static bool is_ours(int signo, void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return false;
    return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == handler;
}

static bool is_free(const struct sigaction *sa) {
    return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_DFL;
}

void csignal_internal_install(uint64_t avoid, csignal_status *status) {
    struct sigaction ours = engine_action(csignal_internal_handler);
    int last_error = 0;
    for (int signo = SIGRTMAX; signo >= SIGRTMIN; signo--) {
        if (avoid & csignal_bit(signo)) continue;
        struct sigaction current;
        if (sigaction(signo, NULL, &current) != 0 || !is_free(&current)) continue;
        if (sigaction(signo, &ours, &internal_previous) != 0) {
            last_error = errno;
            continue;
        }
        internal_installed = signo;
        csignal_set_internal_signo(signo);
        status->code = CSIGNAL_OK;
        return;
    }
    *status = (csignal_status){.code = CSIGNAL_E_NO_INTERNAL_SIGNAL, .err = last_error};
}

bool csignal_internal_is_ours(void) {
    return internal_installed != 0 && is_ours(internal_installed, csignal_internal_handler);
}

void csignal_internal_restore(void) {
    if (internal_installed == 0) return;
    if (is_ours(internal_installed, csignal_internal_handler)) {
        struct sigaction ignore;
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        sigaction(internal_installed, &ignore, NULL);  // discards every pending doorbell, in every thread
        sigaction(internal_installed, &internal_previous, NULL);
    }
    internal_installed = 0;
}

void csignal_dispositions_install(uint64_t mask, csignal_status *status) {
    struct sigaction sa = engine_action(csignal_fallback_handler);
    uint64_t done = 0;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(mask & csignal_bit(s)) || (installed & csignal_bit(s))) continue;
        if (sigaction(s, &sa, &previous_action[s]) != 0) {
            int err = errno;
            csignal_dispositions_restore(done);
            *status = (csignal_status){.code = CSIGNAL_E_SYSTEM, .err = err, .call = "sigaction", .signo = s};
            return;
        }
        installed |= csignal_bit(s);
        done |= csignal_bit(s);
    }
    status->code = CSIGNAL_OK;
}

void csignal_dispositions_restore(uint64_t mask) {
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(mask & installed & csignal_bit(s))) continue;
        if (is_ours(s, csignal_fallback_handler)) sigaction(s, &previous_action[s], NULL);
        installed &= ~csignal_bit(s);
    }
}

/// ASYNC-SIGNAL-SAFE: sigaction only.
int csignal_dispositions_restore_in_child(uint64_t watched) {
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(watched & installed & csignal_bit(s))) continue;
        if (sigaction(s, &previous_action[s], NULL) != 0) return errno;
        installed &= ~csignal_bit(s);
    }
    if (internal_installed != 0) {
        if (sigaction(internal_installed, &internal_previous, NULL) != 0) return errno;
        internal_installed = 0;
    }
    return 0;
}

// --- queries (NOT SAFE: any thread) --------------------------------------------------------------------------

int csignal_disposition(int signo) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return -errno;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) return CSIGNAL_DISP_DEFAULT;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) return CSIGNAL_DISP_IGNORE;
    return CSIGNAL_DISP_HANDLER;
}

bool csignal_is_engine_handler(int signo) { return is_ours(signo, csignal_fallback_handler); }

/// ASYNC-SIGNAL-SAFE.
int csignal_watch_refusal(int s) {
    if (s < 1 || s > SIGRTMAX) return CSIGNAL_REFUSE_RANGE;
    if (s == SIGKILL || s == SIGSTOP) return CSIGNAL_REFUSE_UNCATCHABLE;
    if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP || s == SIGSYS) {
        return CSIGNAL_REFUSE_SYNCHRONOUS;
    }
    if (s >= 32 && s < SIGRTMIN) return CSIGNAL_REFUSE_LIBC;
    if (s == csignal_internal_signo() && csignal_engine_running()) return CSIGNAL_REFUSE_INTERNAL;
    return 0;
}
