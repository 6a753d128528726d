// The engine end to end, in C: real signals to a real process, exact outcomes.
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic int counted = 0;
static void counting_handler(int signo) {
    (void)signo;
    atomic_fetch_add(&counted, 1);
}

static void install_counting(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = counting_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
}

TEST(records_reach_the_pump_through_the_wait_thread, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGRTMIN));
    kill(getpid(), SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1, "one SIGUSR1 record");
    for (int i = 1; i <= 1000; i++) send_rt(SIGRTMIN, i);
    CHECK(log_wait(SIGRTMIN, 1000, 5000) == 1000, "1000 real-time records, got %u", log_count_of(SIGRTMIN));
    int expected = 1;
    for (uint32_t i = 0; i < log_count(); i++) {
        csignal_record r = log_at(i);
        if (r.signo != SIGRTMIN) continue;
        CHECK(r.value_int == expected, "value %d at position %d", r.value_int, expected);
        CHECK(r.route == CSIGNAL_ROUTE_WAITER, "route of value %d is the wait thread", expected);
        expected++;
    }
    csignal_counts counts = csignal_get_counts(SIGRTMIN);
    CHECK(counts.delivered == 1000 && counts.dropped == 0, "delivered %lu dropped %lu", counts.delivered, counts.dropped);
    engine_stop();
}

TEST(the_wait_thread_leaves_fault_signals_and_unwatched_signals_open, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGTERM));
    // While it sleeps in sigwaitinfo, /proc shows its mask minus the set it waits for: make it busy in the pump.
    pump_hold();
    kill(getpid(), SIGUSR1);
    pid_t waiter = csignal_engine_waiter_tid();
    int internal = csignal_internal_signo();
    uint64_t want = bit(SIGUSR1) | bit(SIGTERM) | bit(internal);
    int64_t deadline = now_ms() + 2000;
    while (thread_blocked(waiter) != want && now_ms() < deadline) sleep_ms(1);
    uint64_t blocked = thread_blocked(waiter);
    CHECK(blocked == want, "wait thread blocks exactly its set: %lx", blocked);
    pump_release();
    engine_stop();
}

TEST(stop_restores_dispositions_and_masks_and_signals_then_meet_them, 10) {
    install_counting(SIGUSR2);
    engine_start(0);
    engine_watch(bit(SIGUSR2));
    CHECK(own_blocked() & bit(SIGUSR2), "SIGUSR2 blocked while watched");
    CHECK(csignal_is_engine_handler(SIGUSR2), "engine handler installed");
    engine_stop();
    CHECK(!(own_blocked() & bit(SIGUSR2)), "SIGUSR2 unblocked again");
    CHECK(!csignal_is_engine_handler(SIGUSR2), "previous handler back");
    kill(getpid(), SIGUSR2);
    CHECK(wait_flag(&counted, 2000) == 1, "the restored handler ran");
    CHECK(csignal_disposition(csignal_internal_signo()) == CSIGNAL_DISP_DEFAULT, "internal signal back to SIG_DFL");
}

TEST(start_twice_is_refused_and_changes_nothing, 10) {
    engine_start(0);
    csignal_start_options options = {.ring_capacity = 8192, .batch_limit = 64};
    csignal_status status;
    csignal_engine_start(&options, &status);
    CHECK(status.code == CSIGNAL_E_ALREADY_RUNNING, "code %d", status.code);
    engine_watch(bit(SIGUSR1));
    kill(getpid(), SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1, "still works");
    engine_stop();
}

TEST(bad_signals_are_refused_before_anything_changes, 10) {
    engine_start(0);
    int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, 32, 33,
                     csignal_internal_signo()};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        csignal_status status = engine_try_watch(bit(SIGUSR1) | bit(refused[i]));
        CHECK(status.code == CSIGNAL_E_INVALID && status.signo == refused[i], "signal %d: code %d signo %d",
              refused[i], status.code, status.signo);
        CHECK(!csignal_is_engine_handler(SIGUSR1) && csignal_engine_watched() == 0, "nothing changed (%d)", refused[i]);
    }
    engine_stop();
}

TEST(the_internal_signal_avoids_a_taken_sigrtmax_and_stop_leaves_it_alone, 10) {
    install_counting(SIGRTMAX);
    engine_start(0);
    CHECK(csignal_internal_signo() == SIGRTMAX - 1, "chose %d", csignal_internal_signo());
    engine_watch(bit(SIGUSR1));
    engine_stop();
    kill(getpid(), SIGRTMAX);
    CHECK(wait_flag(&counted, 2000) == 1, "the other handler of SIGRTMAX still runs");
}

TEST(the_internal_signal_avoids_signals_about_to_be_watched, 10) {
    engine_start(bit(SIGRTMAX));
    CHECK(csignal_internal_signo() == SIGRTMAX - 1, "chose %d", csignal_internal_signo());
    engine_watch(bit(SIGRTMAX));
    send_rt(SIGRTMAX, 7);
    CHECK(log_wait(SIGRTMAX, 1, 2000) == 1, "SIGRTMAX watched");
    engine_stop();
}

TEST(a_handler_someone_installs_over_the_internal_signal_makes_setup_refuse, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    int internal = csignal_internal_signo();
    install_counting(internal);
    csignal_status status = engine_try_watch(bit(SIGUSR2));
    CHECK(status.code == CSIGNAL_E_INTERNAL_TAKEN && status.signo == internal, "code %d signo %d", status.code,
          status.signo);
    CHECK(!csignal_is_engine_handler(SIGUSR2), "SIGUSR2 untouched");
    csignal_engine_stop(&status);
    CHECK(status.code == CSIGNAL_E_INTERNAL_TAKEN, "stop refuses too: %d", status.code);
    kill(getpid(), internal);
    CHECK(wait_flag(&counted, 2000) >= 1, "their handler stays");
}

TEST(the_fallback_handler_keeps_errno, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    atomic_store(&csignal_test_clobber_errno, 1);
    unblock_signals(bit(SIGUSR1));
    errno = 1234;
    syscall(SYS_tgkill, getpid(), gettid_raw(), SIGUSR1);  // the handler runs before the call returns
    int after = errno;
    CHECK(after == 1234, "errno %d after the handler", after);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1, "recorded by the handler");
    CHECK(log_at(0).route == CSIGNAL_ROUTE_HANDLER, "handler route");
    CHECK(!(own_blocked() & bit(SIGUSR1)), "the thread's own choice to let SIGUSR1 in stands");
    atomic_store(&csignal_test_clobber_errno, 0);
    engine_stop();
}

static void *busy_sleeper(void *arg) {
    _Atomic int *stop = arg;
    while (!atomic_load(stop)) sleep_ms(1);
    return NULL;
}

TEST(threads_created_during_a_watch_end_up_blocked, 30) {
    enum { THREADS = 64 };
    _Atomic int stop = 0;
    pthread_t threads[THREADS];
    engine_start(0);
    for (int round = 0; round < 20; round++) {
        int made = 0;
        for (int i = 0; i < THREADS / 2; i++) threads[made++] = spawn(busy_sleeper, &stop);
        csignal_status status = engine_try_watch(bit(SIGUSR1) | bit(SIGRTMIN + 2));
        for (int i = THREADS / 2; i < THREADS; i++) threads[made++] = spawn(busy_sleeper, &stop);
        CHECK(status.code == CSIGNAL_OK, "watch: %d", status.code);
        csignal_thread_report reports[256];
        int found = csignal_audit(reports, 256);
        for (int i = 0; i < found && i < 256; i++) {
            if (reports[i].is_waiter) continue;
            uint64_t need = bit(SIGUSR1) | bit(SIGRTMIN + 2);
            CHECK((reports[i].blocked & need) == need, "round %d thread %d blocks %lx", round, reports[i].tid,
                  reports[i].blocked);
        }
        status = engine_try_unwatch(bit(SIGUSR1) | bit(SIGRTMIN + 2));
        CHECK(status.code == CSIGNAL_OK, "unwatch: %d", status.code);
        for (int i = 0; i < found && i < 256; i++) {
            if (reports[i].is_waiter) continue;
            uint64_t blocked = thread_blocked(reports[i].tid);
            CHECK(!(blocked & bit(SIGUSR1)), "round %d thread %d unblocked again: %lx", round, reports[i].tid, blocked);
        }
        atomic_store(&stop, 1);
        for (int i = 0; i < made; i++) join(threads[i]);
        atomic_store(&stop, 0);
    }
    engine_stop();
}

TEST(a_full_ring_holds_signals_in_the_kernel_instead_of_dropping_them, 20) {
    // Manual drain (no pump): the wait thread stops taking signals while the ring has no room for a batch.
    csignal_start_options options = {.ring_capacity = 256, .batch_limit = 64, .pump = NULL};
    csignal_status status;
    csignal_engine_start(&options, &status);
    CHECK(status.code == CSIGNAL_OK, "start");
    engine_watch(bit(SIGRTMIN));
    for (int i = 1; i <= 2000; i++) send_rt(SIGRTMIN, i);  // retries on EAGAIN: the kernel queue fills up
    int expected = 1;
    int64_t deadline = now_ms() + 10000;
    while (expected <= 2000 && now_ms() < deadline) {
        csignal_record batch[64];
        uint32_t n = csignal_ring_pop(batch, 64);
        for (uint32_t i = 0; i < n; i++) {
            CHECK(batch[i].value_int == expected, "value %d at %d", batch[i].value_int, expected);
            expected++;
        }
        if (n > 0) csignal_engine_wake_holder();
        else sleep_ms(1);
    }
    CHECK(expected == 2001, "all 2000 drained, got %d", expected - 1);
    CHECK(csignal_get_counts(SIGRTMIN).dropped == 0, "nothing dropped");
    engine_stop();
}

static void *handler_route_sender(void *arg) {
    // This thread lets SIGUSR2 in while it waits: every SIGUSR2 sent to it runs the fallback handler here.
    _Atomic int *stop = arg;
    sigset_t open_mask;
    sigemptyset(&open_mask);
    while (!atomic_load(stop)) sigsuspend(&open_mask);
    return NULL;
}

TEST(doorbells_get_through_when_the_users_queued_signals_are_at_the_limit, 20) {
    struct rlimit limit = {64, 64};
    CHECK(setrlimit(RLIMIT_SIGPENDING, &limit) == 0, "setrlimit");
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGUSR2));
    _Atomic int stop = 0;
    pthread_t taker = spawn(handler_route_sender, &stop);
    // Fill this user's queue with real-time signals nobody takes: a child process of ours that blocks them.
    pid_t hog = fork();
    if (hog == 0) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        for (;;) pause();
    }
    sleep_ms(50);
    int queued = 0;
    union sigval sv = {0};
    while (queued < 1000 && sigqueue(hog, SIGRTMIN + 5, sv) == 0) queued++;
    CHECK(errno == EAGAIN, "the queue is full after %d", queued);
    // A handler-route record rings the wait thread; a borrower asks for the role: both by doorbell timer.
    pid_t tid = 0;
    for (int i = 0; i < 5; i++) {
        csignal_thread_report reports[64];
        int found = csignal_audit(reports, 64);
        for (int t = 0; t < found; t++)
            if (reports[t].syscall_nr == SYS_rt_sigsuspend) tid = reports[t].tid;
        CHECK(tid != 0, "the waiting thread");
        syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
        CHECK(log_wait(SIGUSR2, (uint32_t)i + 1, 2000) == (uint32_t)i + 1, "handler-route record %d reached the pump", i);
    }
    uint32_t cursor = 0;
    kill(getpid(), SIGUSR1);
    CHECK(borrower_next(SIGUSR1, &cursor, 2000, false), "a borrower with the queue full");
    // Setup must ring ordinary threads with tgkill, which the full queue refuses: a typed error, nothing changed.
    csignal_test_set_setup_timeout(300000000);
    csignal_status status = engine_try_watch(bit(SIGHUP));
    CHECK(status.code == CSIGNAL_E_SYSTEM && status.err == EAGAIN, "watch refused: code %d err %d", status.code,
          status.err);
    CHECK(!csignal_is_engine_handler(SIGHUP) && !(csignal_engine_watched() & bit(SIGHUP)), "SIGHUP untouched");
    // Empty the queue again; then everything works as before.
    kill(hog, SIGKILL);
    waitpid(hog, NULL, 0);
    atomic_store(&stop, 1);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
    join(taker);
    engine_watch(bit(SIGHUP));
    engine_stop();
}

TEST(the_engine_takes_the_highest_real_time_signal_the_system_lets_it_install, 10) {
    // Under valgrind, which keeps SIGRTMAX for itself (sigaction fails with EINVAL), this is SIGRTMAX-1.
    engine_start(0);
    int internal = csignal_internal_signo();
    struct sigaction probe;
    bool sigrtmax_refused = sigaction(SIGRTMAX, NULL, &probe) == 0 && internal != SIGRTMAX;
    note("internal signal %d (SIGRTMAX %d)%s", internal, SIGRTMAX, sigrtmax_refused ? ": SIGRTMAX was refused" : "");
    CHECK(internal >= SIGRTMIN && internal <= SIGRTMAX, "a real-time signal");
    for (int s = internal + 1; s <= SIGRTMAX; s++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = counting_handler;
        CHECK(sigaction(s, &sa, NULL) != 0, "signal %d above the chosen one takes no handler here", s);
    }
    engine_watch(bit(SIGUSR1));
    kill(getpid(), SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 5000) == 1, "the engine works with it");
    engine_stop();
}
