// Races of the wait-role protocol and of setup, each forced deterministically: a thread is paused at a named
// injection point (CSIGNAL_INJECT in the shim) exactly where the race needs it, and the test asserts what must
// hold anyway.
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int counted = 0;
static void counting_handler(int signo) {
    (void)signo;
    atomic_fetch_add(&counted, 1);
}

typedef struct borrower_job {
    int signo;
    int timeout_ms;
    bool lazily;
    _Atomic int got;
    _Atomic pid_t tid;
} borrower_job;

/// Waits until a borrower holds the role and every doorbell of the hand-over has been consumed.
static void wait_until_lent(void) {
    int64_t deadline = now_ms() + 2000;
    while (csignal_role_phase(csignal_role_load()) != CSIGNAL_ROLE_LENT && now_ms() < deadline) sleep_ms(1);
    CHECK(csignal_role_phase(csignal_role_load()) == CSIGNAL_ROLE_LENT, "a borrower holds the role");
    sleep_ms(10);
}

static void *borrow_once(void *arg) {
    borrower_job *job = arg;
    atomic_store(&job->tid, gettid_raw());
    uint32_t cursor = 0;
    atomic_store(&job->got, borrower_next(job->signo, &cursor, job->timeout_ms, job->lazily) ? 1 : -1);
    return NULL;
}

// A borrower that ends its borrow lazily is paused after the role reads LAZY and before it arms the lease timer
// (as if preempted there for longer than the lease). Nobody dequeues meanwhile; once it goes on, the lease
// still ends and a SIGTERM sent meanwhile is recorded.
TEST(the_lease_ends_even_when_the_borrower_is_preempted_before_arming, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGTERM));
    inject_pause("lease.before-arm", 1, 0);
    borrower_job job = {.signo = SIGUSR1, .timeout_ms = 3000, .lazily = true};
    pthread_t borrower = spawn(borrow_once, &job);
    wait_until_lent();
    kill(getpid(), SIGUSR1);
    CHECK(inject_wait_paused("lease.before-arm", 3000) != 0, "the borrower got its event and paused");
    CHECK(csignal_role_phase(csignal_role_load()) == CSIGNAL_ROLE_LAZY, "the role reads LAZY");
    kill(getpid(), SIGTERM);
    sleep_ms(20);  // longer than the lease: with the timer armed first, it would have fired by now
    inject_release("lease.before-arm");
    join(borrower);
    CHECK(log_wait(SIGTERM, 1, 1000) == 1, "the SIGTERM is recorded after the lease");
    CHECK(csignal_role_phase(csignal_role_load()) == CSIGNAL_ROLE_HOME, "the wait thread took the role back");
    engine_stop();
}

typedef struct starter {
    _Atomic int phase;
} starter;

static void *start_watch_stop(void *arg) {
    starter *s = arg;
    block_signals(bit(SIGUSR1));  // like a libdispatch worker: this thread blocks it itself
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    atomic_store(&s->phase, 1);
    while (atomic_load(&s->phase) != 2) sleep_ms(1);
    engine_stop();
    atomic_store(&s->phase, 3);
    while (atomic_load(&s->phase) != 4) sleep_ms(1);
    return NULL;
}

// The engine is started and stopped by a thread that blocks SIGUSR1 itself; the main thread does not. After
// stop each thread has its own mask back, and a SIGUSR1 reaches the handler installed before.
TEST(stop_restores_each_threads_own_mask, 10) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = counting_handler;
    sigaction(SIGUSR1, &sa, NULL);
    unblock_signals(bit(SIGUSR1));
    starter s = {0};
    pthread_t thread = spawn(start_watch_stop, &s);
    while (atomic_load(&s.phase) != 1) sleep_ms(1);
    CHECK(own_blocked() & bit(SIGUSR1), "main blocks SIGUSR1 while it is watched");
    atomic_store(&s.phase, 2);
    while (atomic_load(&s.phase) != 3) sleep_ms(1);
    CHECK(!(own_blocked() & bit(SIGUSR1)), "main has SIGUSR1 unblocked again, as before");
    kill(getpid(), SIGUSR1);
    CHECK(wait_flag(&counted, 2000) == 1, "the restored handler ran");
    atomic_store(&s.phase, 4);
    join(thread);
}

static void *write_to_closed_pipe(void *arg) {
    (void)arg;
    int fds[2];
    if (pipe(fds) != 0) return NULL;
    close(fds[0]);
    ssize_t n = write(fds[1], "x", 1);  // EPIPE: the kernel sends SIGPIPE to this thread
    (void)n;
    close(fds[1]);
    return NULL;
}

// SIGPIPE is raised in the thread that wrote; it is recorded there, and stop is not fatal.
TEST(a_watched_sigpipe_is_recorded_where_it_lands_and_stop_survives, 10) {
    engine_start(0);
    engine_watch(bit(SIGPIPE) | bit(SIGUSR1));
    CHECK(!(own_blocked() & bit(SIGPIPE)), "SIGPIPE is never blocked by the engine");
    write_to_closed_pipe(NULL);  // this thread, which lives on
    join(spawn(write_to_closed_pipe, NULL));  // and one that ends right after
    CHECK(log_wait(SIGPIPE, 2, 2000) == 2, "both SIGPIPEs recorded");
    CHECK(log_at(0).route == CSIGNAL_ROUTE_HANDLER && log_at(0).tid == gettid_raw(), "on the handler route, here");
    CHECK(!(thread_pending(gettid_raw()) & bit(SIGPIPE)), "nothing left pending on this thread");
    engine_stop();
    CHECK(1, "alive after stop");
}

/// A thread that parks until released: it first lets `open` in (its own choice, if any), then publishes its tid.
typedef struct parked {
    uint64_t open;
    _Atomic pid_t tid;
    _Atomic int release;
    pthread_t thread;
} parked;

static void *park(void *arg) {
    parked *p = arg;
    if (p->open != 0) unblock_signals(p->open);
    atomic_store(&p->tid, gettid_raw());
    while (!atomic_load(&p->release)) sleep_ms(1);
    return NULL;
}

/// Starts a parked thread and returns its tid once it runs (the test's alarm bounds the wait).
static pid_t park_thread(parked *p) {
    p->thread = spawn(park, p);
    while (atomic_load(&p->tid) == 0) sleep_ms(1);
    return atomic_load(&p->tid);
}

static void unpark_thread(parked *p) {
    atomic_store(&p->release, 1);
    join(p->thread);
}

// A watched signal sent to one thread that blocks it waits there; unwatch gives the thread its own mask back
// while the fallback handler is still installed, so it is recorded then, never fatal.
TEST(a_thread_directed_signal_is_recorded_at_unwatch_not_fatal, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    parked target = {0};
    pid_t tid = park_thread(&target);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
    sleep_ms(20);
    CHECK(thread_pending(tid) & bit(SIGUSR1), "pending on the thread that blocks it");
    CHECK(log_count_of(SIGUSR1) == 0, "not recorded yet");
    engine_stop();
    CHECK(log_count_of(SIGUSR1) == 1, "recorded by the handler when unwatch unblocked it");
    unpark_thread(&target);
}

// The wait thread is busy (in the pump) past setup's deadline: unwatch fails, and everything is as before;
// once it is free, a retry does the whole job.
TEST(unwatch_that_times_out_changes_nothing_and_a_retry_does_the_whole_job, 20) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = counting_handler;
    sigaction(SIGUSR1, &sa, NULL);
    csignal_test_set_setup_timeout(200000000);
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGUSR2));
    pump_hold();
    kill(getpid(), SIGUSR2);  // the wait thread records it, then blocks in the pump
    sleep_ms(50);
    csignal_status status = engine_try_unwatch(bit(SIGUSR1));
    CHECK(status.code == CSIGNAL_E_WAIT_THREAD_BUSY, "unwatch failed: code %d", status.code);
    CHECK(csignal_is_engine_handler(SIGUSR1), "the engine's handler is still installed");
    CHECK(csignal_engine_watched() & bit(SIGUSR1), "still watched");
    CHECK(own_blocked() & bit(SIGUSR1), "still blocked here");
    status = engine_try_watch(bit(SIGHUP));
    CHECK(status.code == CSIGNAL_E_WAIT_THREAD_BUSY, "watch failed: code %d", status.code);
    CHECK(!csignal_is_engine_handler(SIGHUP) && !(own_blocked() & bit(SIGHUP)), "SIGHUP untouched");
    pump_release();
    status = engine_try_unwatch(bit(SIGUSR1));
    CHECK(status.code == CSIGNAL_OK, "the retry worked: code %d", status.code);
    CHECK(!csignal_is_engine_handler(SIGUSR1), "the previous handler is back");
    CHECK(!(own_blocked() & bit(SIGUSR1)), "SIGUSR1 unblocked again");
    kill(getpid(), SIGUSR1);
    CHECK(wait_flag(&counted, 2000) == 1, "and a SIGUSR1 reaches it");
    engine_stop();
}

static void *open_waiter(void *arg) {
    // Waits with an empty temporary mask, so every SIGUSR1 sent to it takes the handler route.
    _Atomic int *stop = arg;
    sigset_t open_mask;
    sigemptyset(&open_mask);
    while (!atomic_load(stop)) sigsuspend(&open_mask);
    return NULL;
}

static pid_t find_sigsuspend_thread(void) {
    csignal_thread_report reports[64];
    int64_t deadline = now_ms() + 2000;
    while (now_ms() < deadline) {
        int found = csignal_audit(reports, 64);
        for (int i = 0; i < found; i++)
            if (reports[i].syscall_nr == SYS_rt_sigsuspend) return reports[i].tid;
        sleep_ms(1);
    }
    return 0;
}

// Handler-route records reach a thread looping on next(timeout:), each one at once, even when the first one
// arrives while the borrower has asked for the role and the wait thread has not lent it yet.
TEST(handler_route_records_reach_a_borrower_at_once, 20) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    _Atomic int stop = 0;
    pthread_t other = spawn(open_waiter, &stop);
    pid_t target = find_sigsuspend_thread();
    CHECK(target != 0, "the open waiter");
    inject_pause("borrow.asked", 1, 0);
    borrower_job first = {.signo = SIGUSR1, .timeout_ms = 3000, .lazily = true};
    pthread_t borrower = spawn(borrow_once, &first);
    CHECK(inject_wait_paused("borrow.asked", 2000) != 0, "the borrower asked for the role");
    syscall(SYS_tgkill, getpid(), target, SIGUSR1);
    sleep_ms(20);  // the handler records and rings the wait thread, which lends the role to the paused borrower
    inject_release("borrow.asked");
    join(borrower);
    CHECK(atomic_load(&first.got) == 1, "the borrower got it");
    CHECK(log_at(0).route == CSIGNAL_ROUTE_HANDLER, "on the handler route");
    for (int i = 2; i <= 5; i++) {
        borrower_job next = {.signo = SIGUSR1, .timeout_ms = 3000, .lazily = true};
        pthread_t b = spawn(borrow_once, &next);
        sleep_ms(5);
        int64_t sent = now_ms();
        syscall(SYS_tgkill, getpid(), target, SIGUSR1);
        join(b);
        CHECK(atomic_load(&next.got) == 1 && now_ms() - sent < 500, "delivery %d reached the borrower in %ld ms", i,
              (long)(now_ms() - sent));
    }
    atomic_store(&stop, 1);
    syscall(SYS_tgkill, getpid(), target, SIGUSR1);
    join(other);
    engine_stop();
}

static void *block_everything_then_wait(void *arg) {
    _Atomic int *state = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    atomic_store(state, 1);
    while (atomic_load(state) != 2) sleep_ms(1);
    pthread_sigmask(SIG_UNBLOCK, &all, NULL);  // a doorbell left pending here would now run SIG_DFL
    atomic_store(state, 3);
    return NULL;
}

// A thread that blocks every signal gets a doorbell during a watch that it never answers; after stop it
// unblocks everything. The doorbell was discarded at stop: the process lives.
TEST(no_doorbell_survives_stop_to_meet_the_default_action, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    _Atomic int state = 0;
    pthread_t thread = spawn(block_everything_then_wait, &state);
    while (atomic_load(&state) != 1) sleep_ms(1);
    engine_watch(bit(SIGUSR2));  // rings that thread too: the doorbell stays pending on it
    int internal = csignal_internal_signo();
    CHECK(csignal_last_spread().unreachable >= 1, "one thread could not be asked");
    engine_stop();
    atomic_store(&state, 2);
    while (atomic_load(&state) != 3) sleep_ms(1);
    join(thread);
    CHECK(csignal_disposition(internal) == CSIGNAL_DISP_DEFAULT, "the internal signal is back to SIG_DFL, and we live");
}

typedef struct watcher {
    uint64_t mask;
    csignal_status status;
} watcher;

static void *watch_in_thread(void *arg) {
    watcher *w = arg;
    csignal_engine_watch(w->mask, &w->status);
    return NULL;
}

// A borrow cannot begin while setup has the role; setup completes, and borrows work again afterwards.
TEST(a_borrow_cannot_begin_during_setup_and_setup_always_completes, 20) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    inject_pause("apply.before-ring", 1, 0);
    watcher w = {.mask = bit(SIGUSR2)};
    pthread_t setup = spawn(watch_in_thread, &w);
    CHECK(inject_wait_paused("apply.before-ring", 2000) != 0, "setup holds the role");
    CHECK(csignal_borrow_begin(100000000) == EBUSY, "a borrow is refused meanwhile");
    inject_release("apply.before-ring");
    join(setup);
    CHECK(w.status.code == CSIGNAL_OK, "watch completed: %d", w.status.code);
    int64_t started = now_ms();
    engine_stop();
    CHECK(now_ms() - started < 1000, "stop completed at once (%ld ms)", (long)(now_ms() - started));
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    CHECK(csignal_borrow_begin(1000000000) == 0, "a borrow works after setup");
    csignal_borrow_end();
    engine_stop();
}

typedef struct two_calls {
    _Atomic int step;
    _Atomic int first, second;
    _Atomic pid_t tid;
} two_calls;

static void *borrow_twice(void *arg) {
    two_calls *job = arg;
    atomic_store(&job->tid, gettid_raw());
    uint32_t cursor = 0;
    atomic_store(&job->first, borrower_next(SIGUSR1, &cursor, 3000, true) ? 1 : -1);  // leaves a lease
    atomic_store(&job->step, 1);
    while (atomic_load(&job->step) != 2) {}
    atomic_store(&job->second, borrower_next(SIGUSR2, &cursor, 3000, true) ? 1 : -1);
    return NULL;
}

// Borrower A reads its own lease, then is preempted; the lease ends and borrower B takes the role and leaves
// a lease of its own. A must not resume B's lease: it waits the ordinary way, and its signal still arrives.
TEST(a_stale_lease_is_never_resumed, 20) {
    engine_start(0);
    engine_watch(bit(SIGUSR1) | bit(SIGUSR2));
    two_calls a = {0};
    pthread_t ta = spawn(borrow_twice, &a);
    kill(getpid(), SIGUSR1);
    while (atomic_load(&a.step) != 1) {}
    CHECK(atomic_load(&a.first) == 1, "A got its first event");
    inject_pause("borrow.before-resume", 1, atomic_load(&a.tid));
    atomic_store(&a.step, 2);
    CHECK(inject_wait_paused("borrow.before-resume", 2000) != 0, "A read the role word and paused");
    sleep_ms(10);  // A's lease runs out meanwhile: the wait thread takes the role back
    borrower_job b = {.signo = SIGUSR1, .timeout_ms = 3000, .lazily = true};
    pthread_t tb = spawn(borrow_once, &b);
    kill(getpid(), SIGUSR1);
    join(tb);
    CHECK(atomic_load(&b.got) == 1, "B got its event");
    uint64_t word = csignal_role_load();
    bool b_lease = csignal_role_phase(word) == CSIGNAL_ROLE_LAZY && csignal_role_borrower(word) == atomic_load(&b.tid);
    inject_release("borrow.before-resume");
    sleep_ms(2);
    word = csignal_role_load();
    CHECK(!(csignal_role_phase(word) == CSIGNAL_ROLE_LENT && csignal_role_borrower(word) == atomic_load(&a.tid)) ||
              !b_lease,
          "A did not take over B's lease");
    kill(getpid(), SIGUSR2);
    join(ta);
    CHECK(atomic_load(&a.second) == 1, "A's second call got its event");
    engine_stop();
}

// A thread that lets a watched signal in itself keeps that choice when a later watch spreads another signal;
// it still blocks the new one.
TEST(a_thread_that_lets_a_watched_signal_in_keeps_that_choice_across_watches, 10) {
    engine_start(0);
    engine_watch(bit(SIGUSR1));
    parked thread = {.open = bit(SIGUSR1)};  // its own choice: it takes SIGUSR1 itself (fallback handler)
    pid_t tid = park_thread(&thread);
    engine_watch(bit(SIGUSR2));
    uint64_t blocked = thread_blocked(tid);
    CHECK(!(blocked & bit(SIGUSR1)) && (blocked & bit(SIGUSR2)), "SIGUSR1 open, SIGUSR2 blocked: %lx", blocked);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
    CHECK(log_wait(SIGUSR1, 1, 2000) == 1 && log_at(0).route == CSIGNAL_ROUTE_HANDLER, "it took SIGUSR1 itself");
    unpark_thread(&thread);
    engine_stop();
}

typedef struct busy_borrower {
    _Atomic int stop;
    _Atomic int rounds;
    _Atomic int saw_usr2;
} busy_borrower;

/// A caller that keeps the role busy: each round it queues a signal for itself and takes it with a lazy borrow,
/// so it is always back within its lease. Bounded: it stops when told, or after five seconds.
static void *borrow_in_a_loop(void *arg) {
    busy_borrower *job = arg;
    uint32_t cursor = 0, scanned = 0;
    int64_t deadline = now_ms() + 5000;
    for (int round = 0; !atomic_load(&job->stop) && now_ms() < deadline; round++) {
        send_rt(SIGRTMIN + 1, round);
        if (!borrower_next(SIGRTMIN + 1, &cursor, 1000, true)) break;
        atomic_fetch_add(&job->rounds, 1);
        for (uint32_t used = log_count(); scanned < used; scanned++) {
            if (log_at(scanned).signo == SIGUSR2) atomic_store(&job->saw_usr2, 1);
        }
    }
    return NULL;
}

// A watched signal sent to the wait thread itself can be taken only by the wait thread, and nothing wakes it
// for that while a caller borrows the role. A caller that loops on next() is always back within its lease; it
// must still give the role back once it finds a signal waiting there, and go on taking events.
TEST(a_signal_sent_to_the_wait_thread_is_taken_while_a_caller_keeps_borrowing, 20) {
    engine_start(0);
    engine_watch(bit(SIGUSR2) | bit(SIGRTMIN + 1));
    inject_sleep("borrow.streak-over", 0, 0);  // counts the hits only
    busy_borrower job = {0};
    pthread_t borrower = spawn(borrow_in_a_loop, &job);
    while (atomic_load(&job.rounds) < 100) sleep_ms(1);
    pid_t waiter = csignal_engine_waiter_tid();
    syscall(SYS_tgkill, getpid(), waiter, SIGUSR2);
    int64_t sent_at = now_ms();
    int saw = wait_flag(&job.saw_usr2, 2000);
    int rounds_then = atomic_load(&job.rounds);
    note("recorded after %lld ms, the caller had taken %d events", (long long)(now_ms() - sent_at), rounds_then);
    CHECK(saw == 1, "the signal sent to the wait thread is recorded within 2 s");
    CHECK(inject_hits("borrow.streak-over") > 0, "the caller let its lease run out");
    int64_t deadline = now_ms() + 2000;
    while (atomic_load(&job.rounds) < rounds_then + 100 && now_ms() < deadline) sleep_ms(1);
    int rounds_after = atomic_load(&job.rounds);
    atomic_store(&job.stop, 1);
    join(borrower);
    CHECK(rounds_after >= rounds_then + 100, "the caller goes on taking events (%d, then %d)", rounds_then,
          rounds_after);
    CHECK(log_count_of(SIGUSR2) == 1, "recorded once");
    engine_stop();
}
