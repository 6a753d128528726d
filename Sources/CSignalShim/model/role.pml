/*
 * The wait-role protocol of role.c, waiter.c, borrow.c, take.c and engine.c, as a model for spin.
 *
 * Threads: the wait thread (W), one borrower (B) looping on next(timeout:), a fallback handler on another
 * thread (H: a handler-route record), a consumer whose full subscription holds the signal for a while (C), the
 * lease timer (T), a sender (K) and setup (S: a watch, then a stop). Each C statement that reads or writes
 * shared state is one step here; steps inside `atomic` are single atomic instructions in the C (one CAS, one
 * exchange) or a system call that the kernel performs as one step (sigwaitinfo dequeuing a signal).
 *
 * Kernel state: `kq` pending copies of a watched real-time signal in the process's shared queue, handed out
 * in order (`next_seq`); a thread-directed doorbell pending on W or on B (`db_w`, `db_b`). A doorbell pending
 * on B while B does not block the internal signal runs the internal handler at once, which only re-reads
 * state: it is consumed with no effect.
 *
 * Checked (scripts/model-check):
 *   - safety, at every step: one dequeuer at a time (W takes signals only at HOME/ASKED, B only at LENT);
 *     records enter the ring in the order the kernel handed the signals out; only legal moves of the role;
 *   - at quiescence (spin's `timeout`: no step enabled anywhere): no watched signal pending and no record
 *     left unpumped (nothing waits with nobody able to take it and no wake-up on its way), setup regained the
 *     role and finished, stop completed (the wait thread exited);
 *   - no invalid end state (deadlock): every thread that blocks is at a labelled end state.
 * A variant with a deliberate mistake must fail (-DBROKEN_...):
 *   BROKEN_ARM_BEFORE_LAZY    the borrower arms the lease timer before the role reads LAZY
 *   BROKEN_NO_CLEAR_ON_ACQUIRE a borrower that becomes the holder does not clear the drain flag
 *   BROKEN_RECLAIM_WITHOUT_RING setup sets the reclaim flag but does not ring the holder
 *   BROKEN_BORROWER_KEEPS_INTERNAL_OPEN the borrower does not block the internal signal while it holds the role
 *   BROKEN_UNHOLD_WITHOUT_RING  the end of a hold does not ring the holder
 */

#define HOME  0
#define ASKED 1
#define LENT  2
#define LAZY  3

/* Scenarios: each one is checked exhaustively on its own (a model with every thread at once is too large).
   Without TIMEOUTS the borrower's waits never time out: then a wake-up it needs and does not get shows as a
   state where it sleeps while work is waiting, instead of being hidden by the timeout that ends its wait.
     LEASE  the wait thread, a borrower looping on next(), the lease timer, a sender, a handler-route record
     SETUP  the same with setup: a watch (reclaim, apply), then a stop
     HOLD   the same with a consumer whose full subscription holds the signal, then releases it */
#if !defined(LEASE) && !defined(SETUP) && !defined(HOLD)
#define LEASE
#endif
#define BORROWS 2   /* next() calls by B */
#define SENDS   2   /* copies of the watched signal sent by K */

byte phase = HOME;
bit  reclaim = 0;
byte borrowed = 0;   /* the borrower field of the role word: borrower 1 or 2, or nobody (0) */
/* The generation in the role word exists for futex waits: a waiter sleeps only while the word is what it read,
   and every FUTEX_WAKE (role.c wakes on moves to HOME, moves out of ASKED and reclaim changes) wakes it. The
   model keeps the three fields, and one "woken" bit per waiter. */
bit  fx_setup = 0;
bit  fx_borrower[3];

bit  db_w = 0;       /* doorbell pending on W (W always blocks the internal signal) */
bit  db_b[3];        /* doorbell pending on borrower 1 or 2 */
bit  b_blocks_internal[3];

byte kq = 0;         /* watched signals pending in the kernel */
byte next_seq = 1;   /* the next one the kernel hands out */
byte sent = 0;
bit  ring = 0;       /* a record not yet pumped */
byte last_recorded = 0;
bit  drain_pending = 0;
bit  held = 0;       /* a full subscription holds the signal: the holder leaves it out of its wait set */

bit  lease_armed = 0;
byte requested_gen = 0;
byte applied_gen = 0;
byte stop_state = 0; /* 0 none, 1 requested, 2 exiting */
bit  w_exited = 0;
bit  h_done = 0;
bit  c_done = 0;
byte b_done = 0;

inline move(to, who) {
    /* csignal_role_move: the table at the top of role.c */
    assert(
        (phase == HOME  && to == ASKED && !reclaim) ||
        (phase == ASKED && (to == HOME || (to == LENT && !reclaim))) ||
        (phase == LENT  && (to == HOME || (to == LAZY && !reclaim))) ||
        (phase == LAZY  && (to == HOME || (to == LENT && !reclaim))));
    if :: to == HOME || phase == ASKED -> fx_setup = 1; fx_borrower[1] = 1; fx_borrower[2] = 1 :: else -> skip fi;
    phase = to; borrowed = who
}

/* csignal_doorbell(holder): the borrower while LENT, else the wait thread. */
inline ring_holder() {
    if
    :: phase == LENT -> if :: b_blocks_internal[borrowed] -> db_b[borrowed] = 1 :: else -> skip fi
    :: else -> db_w = 1
    fi
}

/* csignal_role_ring: the handler (or an unhold) tells the holder to look. */
inline role_ring() {
    if
    :: atomic { drain_pending == 0 -> drain_pending = 1 };
       ring_holder()
    :: atomic { drain_pending == 1 -> skip }
    fi
}

/* sigwaitinfo on the wait set the holder built before it slept (`excluded`: the signal was held then), then
   record: two steps, as in take.c. */
inline take_and_record(seq, excluded, dequeuer_may) {
    atomic { kq > 0 && !excluded -> assert(dequeuer_may); kq--; seq = next_seq; next_seq++ };
    atomic { assert(seq > last_recorded); last_recorded = seq; ring = 1 }
}

active proctype Sender() {
    do
    :: sent < SENDS -> atomic { kq++; sent++ }
    :: sent == SENDS -> break
    od
}

active proctype Waiter() {
    byte seq;
    byte have = 0;
    bit excluded;
end_loop:
    do
    :: atomic { phase == ASKED ->
          if
          :: reclaim -> move(HOME, 0)
          :: else -> move(LENT, borrowed)
          fi }
    :: atomic { phase == LAZY -> move(HOME, 0) }
    :: phase == LENT ->
          /* run jobs; then wait for the doorbell only (it was looked at above: a later change rings us) */
end_lent: atomic { db_w -> db_w = 0 }
    :: phase == HOME || phase == ASKED ->
          if
          :: atomic { stop_state == 1 -> stop_state = 2 } -> break
          :: else -> skip
          fi;
          if :: requested_gen != have -> have = requested_gen; applied_gen = have :: else -> skip fi;
          drain_pending = 0;          /* csignal_role_acquired */
          ring = 0;                   /* the pump */
          excluded = held;            /* csignal_wait_set */
end_home: if
          :: take_and_record(seq, excluded, phase == HOME || phase == ASKED)
          :: atomic { db_w -> db_w = 0; drain_pending = 0 }
          fi
    od;
    w_exited = 1
}

proctype Borrower(byte me) {
    byte seen_phase;
    bit seen_reclaim;
    byte i = 0;
    byte seq;
    byte tries;
    bit excluded;
    do
    :: i == BORROWS -> break
    :: i < BORROWS ->
        i++;
        /* csignal_borrow_begin */
#ifndef BROKEN_BORROWER_KEEPS_INTERNAL_OPEN
        b_blocks_internal[me] = 1;
#endif
        if
        :: atomic { phase == LAZY && borrowed == me && !reclaim -> move(LENT, me) };
           lease_armed = 0;
           goto holding
        :: phase == LAZY && borrowed == me -> db_w = 1; goto refused   /* streak over: rings, takes no lease */
        :: atomic { phase == HOME && !reclaim -> move(ASKED, me) };
           db_w = 1;
           do
           :: atomic { fx_borrower[me] = 0; seen_phase = phase; seen_reclaim = reclaim };
              if
              :: seen_phase == LENT -> goto holding
              :: seen_phase == HOME -> goto refused
              :: seen_phase == ASKED ->
                 if
                 :: atomic { phase == ASKED -> move(HOME, 0) }; goto refused   /* timed out */
                 :: atomic { phase != seen_phase || reclaim != seen_reclaim || fx_borrower[me] }  /* futex wait */
                 fi
              fi
           od
        :: else -> goto refused
        fi;
refused:
        atomic { b_blocks_internal[me] = 0; db_b[me] = 0 };
        goto next;
holding:
#ifndef BROKEN_NO_CLEAR_ON_ACQUIRE
        drain_pending = 0;
#endif
        ring = 0;                     /* pump first: records may be waiting */
        tries = 0;
        do
        :: tries == 2 -> break
        :: tries < 2 ->
            tries++;
            if :: reclaim -> break :: else -> skip fi;
            /* csignal_borrow_wait: sigtimedwait on the wait set and the internal signal, with a timeout */
            excluded = held;
end_borrower_wait:
            if
            :: take_and_record(seq, excluded, phase == LENT && borrowed == me)
            :: atomic { db_b[me] -> db_b[me] = 0; drain_pending = 0 }
#ifdef TIMEOUTS
            :: skip                   /* timed out */
#endif
            fi;
            ring = 0;                 /* the pump */
            if :: reclaim -> break :: else -> skip fi
        od;
        /* hand the event over, and give the role back: at once, or lazily */
        if
        :: atomic { !reclaim && phase == LENT ->
#ifdef BROKEN_ARM_BEFORE_LAZY
              lease_armed = 1 };
              atomic { move(LAZY, me) };
#else
              move(LAZY, me) };
              lease_armed = 1;        /* armed after the move: the lease runs from LAZY */
#endif
              atomic { b_blocks_internal[me] = 0; db_b[me] = 0 }
        :: atomic { move(HOME, 0) };  /* csignal_borrow_end */
           db_w = 1;
           atomic { b_blocks_internal[me] = 0; db_b[me] = 0 }
        fi;
next:
        skip
    od;
    b_done++
}

init {
    run Borrower(1);
#ifdef TWO_BORROWERS
    run Borrower(2)
#endif
}

active proctype Timer() {
end_timer:
    do
    :: atomic { lease_armed -> lease_armed = 0; db_w = 1 }
    od
}

/* A fallback handler on some other thread: records two deliveries, ringing the holder after each. */
#if defined(LEASE) || defined(SETUP)
active proctype Handler() {
    ring = 1;
    role_ring();
    ring = 1;
    role_ring();
    h_done = 1
}
#endif

/* A lossless subscription that fills up (the pump holds the signal), then is read (unhold rings the holder). */
#ifdef HOLD
active proctype Consumer() {
    held = 1;
    held = 0;
#ifndef BROKEN_UNHOLD_WITHOUT_RING
    role_ring();
#endif
    c_done = 1
}
#endif

inline reclaim_role() {
    atomic { !reclaim -> reclaim = 1; fx_setup = 1; fx_borrower[1] = 1; fx_borrower[2] = 1 };
    do
    :: atomic { fx_setup = 0; seen_phase = phase; seen_borrowed = borrowed };   /* one load of the role word */
       if
       :: seen_phase == HOME -> break
       :: else ->
#ifndef BROKEN_RECLAIM_WITHOUT_RING
           ring_holder();
#endif
           /* futex wait: returns at once if the word changed since the load, else sleeps until a wake */
           atomic { phase != seen_phase || borrowed != seen_borrowed || fx_setup }
       fi
    od
}

inline apply_watched() {
    requested_gen++;
    db_w = 1;
    (applied_gen == requested_gen)
}

#ifndef SETUP
bit setup_done = 1;
#else
bit setup_done = 0;
active proctype Setup() {
    byte seen_phase;
    bit seen_borrowed;
    /* watch (or unwatch: the same steps) */
    reclaim_role();
    apply_watched();
    atomic { reclaim = 0; fx_setup = 1; fx_borrower[1] = 1; fx_borrower[2] = 1 };
    reclaim_role();
    apply_watched();
    stop_state = 1;
    db_w = 1;
    (w_exited);
    setup_done = 1
}
#endif

active proctype Quiescence() {
    /* Nothing can move any more: every promise must hold. */
    timeout ->
#ifdef SETUP
        assert(setup_done && w_exited);  /* setup regained the role every time, and stop completed */
        assert(h_done)                   /* a handler never waits for anyone */
#else
        assert(kq == 0);    /* no watched signal left in the kernel with nobody to take it */
        assert(ring == 0)   /* no record left unpumped */
#endif
}
