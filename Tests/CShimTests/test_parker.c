// libdispatch's parked main thread, stood in for by the test's own main thread looping in sigsuspend on a static
// empty mask (the test tells the shim to treat that mask as libdispatch's): the engine takes it over, so that it
// blocks the watched signals, and every delivery is taken by the wait thread, in order.
#include "harness.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static const sigset_t park_mask;  // all zero, like libdispatch's `static const sigset_t mask`
static _Atomic int main_parks = 0;


/// The main thread's part: park like dispatch_main does, forever (the worker ends the process).
static void park_main_forever(void) {
    pthread_sigmask(SIG_SETMASK, &park_mask, NULL);
    atomic_store(&main_parks, 1);
    for (;;) sigsuspend(&park_mask);
}

static void wait_main_parked(void) {
    int64_t deadline = now_ms() + 2000;
    while (now_ms() < deadline) {
        if (atomic_load(&main_parks)) {
            uint64_t arg0 = 0;
            if (csignal_thread_syscall(getpid(), &arg0) == SYS_rt_sigsuspend) return;
        }
        sleep_ms(1);
    }
    CHECK(0, "the main thread parked");
}

static void expect_all_in_order_through_the_wait_thread(int n) {
    int signo = SIGRTMIN + 1;
    for (int i = 1; i <= n; i++) send_rt(signo, i);
    CHECK(log_wait(signo, (uint32_t)n, 10000) == (uint32_t)n, "all %d recorded, got %u", n, log_count_of(signo));
    int expected = 1;
    for (uint32_t i = 0; i < log_count(); i++) {
        csignal_record r = log_at(i);
        if (r.signo != signo) continue;
        CHECK(r.value_int == expected, "value %d where %d was expected", r.value_int, expected);
        CHECK(r.route == CSIGNAL_ROUTE_WAITER, "value %d taken by the wait thread, not the parked thread", expected);
        expected++;
    }
}

static void *adopt_at_watch(void *unused) {
    (void)unused;
    wait_main_parked();
    csignal_parker_set_foreign_mask(&park_mask);
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGRTMIN + 1));
    CHECK(csignal_last_spread().adopted_parker == getpid(), "the parked main thread was taken over: %d",
          csignal_last_spread().adopted_parker);
    CHECK(csignal_parker_tid() == getpid(), "it runs the engine's park loop");
    uint64_t blocked = thread_blocked(getpid());
    CHECK((blocked & (bit(SIGUSR1) | bit(SIGRTMIN + 1))) == (bit(SIGUSR1) | bit(SIGRTMIN + 1)),
          "while it waits, the watched set is blocked: %lx", blocked);
    expect_all_in_order_through_the_wait_thread(5000);
    engine_try_unwatch(bit(SIGUSR1));
    blocked = thread_blocked(getpid());
    CHECK(!(blocked & bit(SIGUSR1)) && (blocked & bit(SIGRTMIN + 1)), "unwatch lets SIGUSR1 in again there: %lx",
          blocked);
    engine_stop();
    CHECK(thread_blocked(getpid()) == 0, "after stop it waits with an empty mask again, as libdispatch's loop does");
    _exit(0);
}

TEST(the_parked_main_thread_is_taken_over_when_the_engine_watches, 20) {
    spawn(adopt_at_watch, NULL);
    park_main_forever();
}

static void *adopt_after_hint(void *unused) {
    (void)unused;
    csignal_parker_set_foreign_mask(&park_mask);
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGRTMIN + 1));  // before the main thread parks
    CHECK(csignal_last_spread().adopted_parker == 0, "nothing to take over yet");
    atomic_store(&main_parks, 2);  // let it park
    wait_main_parked();
    // It waits with every signal open: the first SIGUSR1 reaches it through the fallback handler, and that makes
    // the wait thread look again.
    kill(getpid(), SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1, "the first one arrived");
    int64_t deadline = now_ms() + 2000;
    while (csignal_parker_tid() == 0 && now_ms() < deadline) sleep_ms(1);
    CHECK(csignal_parker_tid() == getpid(), "taken over after the main thread took a watched signal");
    expect_all_in_order_through_the_wait_thread(5000);
    engine_stop();
    _exit(0);
}

TEST(a_main_thread_that_parks_after_the_watch_is_taken_over_at_its_first_signal, 20) {
    spawn(adopt_after_hint, NULL);
    while (atomic_load(&main_parks) != 2) sleep_ms(1);
    park_main_forever();
}

static const sigset_t other_mask;  // empty too, but not the one the test calls libdispatch's
static _Atomic int main_left_park = 0;

/// The main thread's part in the tests below: waits in sigsuspend on `other_mask` (mode 3), or parks on the
/// park mask until its first signal and then waits on `other_mask` (mode 4), forever.
static void wait_elsewhere_forever(int mode) {
    if (mode == 4) {
        pthread_sigmask(SIG_SETMASK, &park_mask, NULL);
        atomic_store(&main_parks, 1);
        sigsuspend(&park_mask);
        atomic_store(&main_left_park, 1);
    }
    pthread_sigmask(SIG_SETMASK, &other_mask, NULL);
    atomic_store(&main_parks, 1);
    for (;;) sigsuspend(&other_mask);
}

/// Waits until the wait thread has been round its loop once more: a record it takes itself reaches the log
/// only through the pump at the top of its loop, after the look for a hint.
static void wait_for_a_lap_of_the_wait_thread(int value) {
    pid_t waiter = atomic_load(&csignal_waiter_tid_value);
    CHECK(csignal_tg_sigqueue(waiter, SIGRTMIN + 1, value) == 0, "queued to the wait thread");
    CHECK(log_wait(SIGRTMIN + 1, 1, 2000) == 1, "the wait thread took it");
}

static void *no_look_for_another_wait(void *unused) {
    (void)unused;
    csignal_parker_set_foreign_mask(&park_mask);
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGRTMIN + 1));
    atomic_store(&main_parks, 3);
    wait_main_parked();
    syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1, "the main thread took SIGUSR1");
    CHECK(log_at(0).route == CSIGNAL_ROUTE_HANDLER, "through the fallback handler");
    wait_for_a_lap_of_the_wait_thread(1);
    int looks = 0, abandoned = 0;
    csignal_parker_test_looks(&looks, &abandoned);
    CHECK(looks == 0, "a main thread in some other system call sends the wait thread looking: %d looks", looks);
    CHECK(csignal_parker_tid() == 0, "nothing was taken over");
    engine_stop();
    _exit(0);
}

TEST(a_main_thread_waiting_in_some_other_call_does_not_send_the_wait_thread_looking_for_the_parker, 20) {
    spawn(no_look_for_another_wait, NULL);
    while (atomic_load(&main_parks) != 3) sleep_ms(1);
    atomic_store(&main_parks, 0);
    wait_elsewhere_forever(3);
}

static void *watch_sigusr2(void *unused) {
    (void)unused;
    engine_watch(bit(SIGUSR2));
    return NULL;
}

static void *setup_does_not_wait_for_the_look(void *unused) {
    (void)unused;
    csignal_parker_set_foreign_mask(&park_mask);
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGRTMIN + 1));  // before the main thread parks
    inject_pause("parker.look-again", 1, 0);
    atomic_store(&main_parks, 4);
    wait_main_parked();
    // The main thread takes SIGUSR1 in its park, then waits elsewhere: the wait thread's look finds no parker
    // and would keep looking for a while.
    syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1);
    CHECK(inject_wait_paused("parker.look-again", 2000) != 0, "the wait thread looks for the parker");
    CHECK(atomic_load(&main_left_park), "the main thread left the park");
    // Setup arrives while it looks: it takes the role home and asks for the new watched set.
    inject_pause("apply.before-ring", 1, 0);
    pthread_t setup = spawn(watch_sigusr2, NULL);
    CHECK(inject_wait_paused("apply.before-ring", 2000) != 0, "setup asked for the wait thread");
    inject_release("parker.look-again");
    inject_release("apply.before-ring");
    join(setup);
    int looks = 0, abandoned = 0;
    csignal_parker_test_looks(&looks, &abandoned);
    // It may look again while setup goes on (the hint stays): every look ended for setup, none ran its course.
    CHECK(abandoned >= 1 && looks == abandoned, "the wait thread stopped looking for the parker when setup asked "
          "for it: %d looks, %d stopped", looks, abandoned);
    engine_stop();
    _exit(0);
}

TEST(setup_does_not_wait_while_the_wait_thread_looks_for_the_parker, 20) {
    spawn(setup_does_not_wait_for_the_look, NULL);
    while (atomic_load(&main_parks) != 4) sleep_ms(1);
    atomic_store(&main_parks, 0);
    wait_elsewhere_forever(4);
}
