// The pieces one at a time: the ring, the recorder, the role word, holds, the mask arithmetic. None needs a wait
// thread, a timer or a delivered signal, so these run under qemu-aarch64 too (scripts/ctest --aarch64), where a
// weaker memory model than x86_64's gets its chance to break the orderings.
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static csignal_record record_with(int signo, int value) {
    csignal_record r;
    memset(&r, 0, sizeof r);
    r.signo = signo;
    r.value_int = value;
    return r;
}

UNIT_TEST(the_ring_keeps_order_refuses_when_full_and_wraps, 10) {
    csignal_ring_reset(8);
    for (int i = 1; i <= 8; i++) {
        csignal_record r = record_with(SIGUSR1, i);
        CHECK(csignal_ring_push(&r), "push %d", i);
        CHECK(r.sequence == (uint64_t)i, "sequence %lu", r.sequence);
    }
    csignal_record extra = record_with(SIGUSR1, 9);
    CHECK(!csignal_ring_push(&extra), "the ninth is refused");
    CHECK(csignal_ring_free() == 0 && csignal_ring_pending() == 8, "full");
    csignal_record out[16];
    CHECK(csignal_ring_pop(out, 3) == 3, "pop three");
    CHECK(out[0].value_int == 1 && out[2].value_int == 3, "oldest first");
    for (int i = 9; i <= 11; i++) {
        csignal_record r = record_with(SIGUSR1, i);
        CHECK(csignal_ring_push(&r), "wrapped push %d", i);
    }
    uint32_t n = csignal_ring_pop(out, 16);
    CHECK(n == 8, "eight left, got %u", n);
    for (uint32_t i = 0; i < n; i++) CHECK(out[i].value_int == (int)(4 + i), "value %d at %u", out[i].value_int, i);
}

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };
static _Atomic int producers_done = 0;

static void *produce(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 1; i <= PER_PRODUCER; i++) {
        csignal_record r = record_with(SIGRTMIN + id, i);
        while (!csignal_ring_push(&r)) {}  // full: the consumer is behind; try again
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

UNIT_TEST(the_ring_hands_records_over_intact_between_threads, 120) {
    csignal_ring_reset(1024);
    pthread_t threads[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) threads[p] = spawn(produce, (void *)(intptr_t)p);
    int next[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) next[p] = 1;
    long total = 0;
    uint64_t last_sequence = 0;
    csignal_record out[256];
    while (total < (long)PRODUCERS * PER_PRODUCER) {
        uint32_t n = csignal_ring_pop(out, 256);
        for (uint32_t i = 0; i < n; i++) {
            int p = out[i].signo - SIGRTMIN;
            CHECK(p >= 0 && p < PRODUCERS, "a torn record: signo %d", out[i].signo);
            CHECK(out[i].value_int == next[p], "producer %d: value %d, expected %d", p, out[i].value_int, next[p]);
            CHECK(out[i].sequence > last_sequence, "sequences grow: %lu after %lu", out[i].sequence, last_sequence);
            last_sequence = out[i].sequence;
            next[p]++;
            total++;
        }
    }
    for (int p = 0; p < PRODUCERS; p++) join(threads[p]);
    CHECK(csignal_ring_pop(out, 1) == 0, "nothing extra");
}

UNIT_TEST(the_recorder_counts_every_delivery_and_every_drop, 10) {
    csignal_ring_reset(4);
    csignal_counts before = csignal_get_counts(SIGUSR2);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGUSR2;
    info.si_code = SI_QUEUE;
    for (int i = 0; i < 10; i++) {
        info.si_value.sival_int = i;
        csignal_record_delivery(SIGUSR2, &info, i % 2 == 0 ? CSIGNAL_ROUTE_WAITER : CSIGNAL_ROUTE_HANDLER);
    }
    csignal_counts after = csignal_get_counts(SIGUSR2);
    CHECK(after.delivered - before.delivered == 10, "delivered %lu", after.delivered - before.delivered);
    CHECK(after.via_waiter - before.via_waiter == 5 && after.via_handler - before.via_handler == 5, "routes");
    CHECK(after.dropped - before.dropped == 6, "six dropped (ring of 4), got %lu", after.dropped - before.dropped);
    csignal_record out[8];
    CHECK(csignal_ring_pop(out, 8) == 4, "four kept");
    CHECK(out[0].value_int == 0 && out[3].value_int == 3 && out[0].code == SI_QUEUE, "the first four, whole");
}

static bool moves(uint64_t word, uint32_t phase, pid_t who) { return csignal_role_move(word, phase, who); }

UNIT_TEST(the_role_word_moves_only_along_its_table, 10) {
    csignal_role_reset();
    uint64_t w = csignal_role_load();
    CHECK(csignal_role_phase(w) == CSIGNAL_ROLE_HOME && csignal_role_borrower(w) == 0, "starts HOME");
    CHECK(moves(w, CSIGNAL_ROLE_ASKED, 4242), "HOME -> ASKED");
    CHECK(!moves(w, CSIGNAL_ROLE_ASKED, 4242), "a stale word does not move it");
    w = csignal_role_load();
    CHECK(csignal_role_borrower(w) == 4242 && csignal_role_generation(w) == 1, "borrower and generation");
    CHECK(moves(w, CSIGNAL_ROLE_LENT, 4242), "ASKED -> LENT");
    w = csignal_role_load();
    CHECK(moves(w, CSIGNAL_ROLE_LAZY, 4242), "LENT -> LAZY");
    w = csignal_role_load();
    CHECK(moves(w, CSIGNAL_ROLE_LENT, 4242), "LAZY -> LENT");
    w = csignal_role_load();
    CHECK(moves(w, CSIGNAL_ROLE_LAZY, 4242), "LENT -> LAZY");
    w = csignal_role_load();
    CHECK(moves(w, CSIGNAL_ROLE_HOME, 0), "LAZY -> HOME");
    CHECK(csignal_role_generation(csignal_role_load()) == 6, "six moves");
}

static void expect_abort(void (*body)(void), const char *what) {
    pid_t child = fork();
    if (child == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        body();
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s aborts (status %x)", what, status);
}

static void home_to_lent(void) {
    csignal_role_reset();
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_LENT, 1);
}
static void home_to_lazy(void) {
    csignal_role_reset();
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_LAZY, 1);
}
static void lent_to_asked(void) {
    csignal_role_reset();
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_ASKED, 1);
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_LENT, 1);
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_ASKED, 1);
}
static void home_with_a_borrower(void) {
    csignal_role_reset();
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_ASKED, 1);
    csignal_role_move(csignal_role_load(), CSIGNAL_ROLE_HOME, 1);
}

UNIT_TEST(an_illegal_move_of_the_role_aborts, 20) {
    expect_abort(home_to_lent, "HOME -> LENT");
    expect_abort(home_to_lazy, "HOME -> LAZY");
    expect_abort(lent_to_asked, "LENT -> ASKED");
    expect_abort(home_with_a_borrower, "HOME naming a borrower");
}

UNIT_TEST(the_hold_counts_nest_per_signal, 10) {
    csignal_reset_holds();
    csignal_hold(bit(SIGRTMIN) | bit(SIGUSR1));
    csignal_hold(bit(SIGRTMIN));
    CHECK(csignal_held() == (bit(SIGRTMIN) | bit(SIGUSR1)), "both held");
    csignal_unhold(bit(SIGUSR1));
    CHECK(csignal_held() == bit(SIGRTMIN), "SIGUSR1 released");
    csignal_unhold(bit(SIGRTMIN));
    CHECK(csignal_held() == bit(SIGRTMIN), "still one hold on SIGRTMIN");
    csignal_unhold(bit(SIGRTMIN));
    CHECK(csignal_held() == 0, "none left");
}

static uint64_t apply(uint64_t current, pid_t tid) {
    sigset_t mask;
    csignal_sigset_from_mask(&mask, current);
    csignal_masks_apply(&mask, tid);
    return csignal_mask_from_sigset(&mask);
}

/// Publishes a mask request without ringing anyone (the thread applies it when its handler runs).
/// Publishes a mask request as a spread does, as if it rang `threads`, without ringing anyone.
extern void csignal_test_masks_request(uint64_t block, uint64_t release, const pid_t *threads, int count);

UNIT_TEST(each_thread_gets_its_own_previous_mask_back, 10) {
    csignal_masks_reset();
    // Thread 100 had SIGUSR1 blocked itself, thread 200 had not; both are asked to block SIGUSR1 and SIGTERM.
    const pid_t rung[] = {100, 200};
    csignal_test_masks_request(bit(SIGUSR1) | bit(SIGTERM), 0, rung, 2);
    CHECK(apply(bit(SIGUSR1) | bit(SIGHUP), 100) == (bit(SIGUSR1) | bit(SIGTERM) | bit(SIGHUP)), "100 blocks both");
    CHECK(apply(0, 200) == (bit(SIGUSR1) | bit(SIGTERM)), "200 blocks both");
    // A doorbell that comes late applies the same state again: nothing changes, the records stay.
    CHECK(apply(bit(SIGUSR1) | bit(SIGTERM) | bit(SIGHUP), 100) == (bit(SIGUSR1) | bit(SIGTERM) | bit(SIGHUP)),
          "idempotent");
    // SIGUSR1 is unwatched: each gets its own state back. Thread 300 never applied the watch (it was created
    // later and inherited the block): it gets SIGUSR1 unblocked during this spread.
    csignal_test_masks_request(bit(SIGTERM), bit(SIGUSR1), NULL, 0);
    CHECK(apply(bit(SIGUSR1) | bit(SIGTERM) | bit(SIGHUP), 100) == (bit(SIGUSR1) | bit(SIGTERM) | bit(SIGHUP)),
          "100 keeps SIGUSR1 blocked: it had it blocked itself");
    CHECK(apply(bit(SIGUSR1) | bit(SIGTERM), 200) == bit(SIGTERM), "200 gets SIGUSR1 unblocked");
    CHECK(apply(bit(SIGUSR1) | bit(SIGTERM), 300) == bit(SIGTERM), "300, unknown, gets it unblocked");
    // After the spread, a late doorbell on an unknown thread changes nothing it did itself.
    csignal_test_masks_request(bit(SIGTERM), 0, NULL, 0);
    CHECK(apply(bit(SIGUSR1) | bit(SIGTERM), 400) == (bit(SIGUSR1) | bit(SIGTERM)), "400's own SIGUSR1 stays");
    CHECK(csignal_masks_previous_blocked(100, bit(SIGTERM)) == 0, "100 had SIGTERM open before");
    // A watched signal a thread was never rung for (it appeared after that spread) and let in itself stays open
    // when a later spread adds another signal; the new one is blocked.
    const pid_t later[] = {500};
    csignal_test_masks_request(bit(SIGTERM) | bit(SIGHUP), 0, later, 1);
    CHECK(apply(0, 500) == bit(SIGHUP), "500 keeps SIGTERM open (its choice) and blocks the new SIGHUP");
    // One that was rung and answers late (it blocked the internal signal meanwhile) still applies what it owes.
    const pid_t late[] = {600};
    csignal_test_masks_request(bit(SIGTERM) | bit(SIGHUP) | bit(SIGUSR2), 0, late, 1);
    csignal_test_masks_request(bit(SIGTERM) | bit(SIGHUP) | bit(SIGUSR2) | bit(SIGALRM), 0, late, 1);
    CHECK(apply(0, 600) == (bit(SIGUSR2) | bit(SIGALRM)), "600 blocks both signals it was rung for");
}
