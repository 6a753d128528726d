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
 *   BROKEN_BORROW_DURING_RECLAIM a borrow may begin while setup reclaims
 *   BROKEN_BORROWER_KEEPS_INTERNAL_OPEN the borrower does not block the internal signal while it holds the role
 */

#define HOME  0
#define ASKED 1
#define LENT  2
#define LAZY  3

#define BORROWS 2   /* next() calls by B */
#define SENDS   2   /* copies of the watched signal sent by K */

byte phase = HOME;
bit  reclaim = 0;
bit  borrowed = 0;   /* the borrower field of the role word: B, or nobody */
/* The generation in the role word exists for futex waits: a waiter sleeps only while the word is what it read,
   and every FUTEX_WAKE (role.c wakes on moves to HOME, moves out of ASKED and reclaim changes) wakes it. The
   model keeps the three fields, and one "woken" bit per waiter. */
bit  fx_setup = 0;
bit  fx_borrower = 0;

bit  db_w = 0;       /* doorbell pending on W (W always blocks the internal signal) */
bit  db_b = 0;       /* doorbell pending on B */
bit  b_blocks_internal = 0;

byte kq = 0;         /* watched signals pending in the kernel */
byte next_seq = 1;   /* the next one the kernel hands out */
byte sent = 0;
byte ring = 0;       /* records not yet pumped */
byte last_recorded = 0;
bit  drain_pending = 0;
bit  held = 0;       /* a full subscription holds the signal: the holder leaves it out of its wait set */

bit  lease_armed = 0;
byte requested_gen = 0;
byte applied_gen = 0;
byte stop_state = 0; /* 0 none, 1 requested, 2 exiting */
bit  w_exited = 0;
bit  setup_done = 0;
bit  h_done = 0;
bit  c_done = 0;
bit  b_done = 0;

inline move(to, who) {
    /* csignal_role_move: the table at the top of role.c */
    assert(
        (phase == HOME  && to == ASKED && !reclaim) ||
        (phase == ASKED && (to == HOME || (to == LENT && !reclaim))) ||
        (phase == LENT  && (to == HOME || (to == LAZY && !reclaim))) ||
        (phase == LAZY  && (to == HOME || (to == LENT && !reclaim))));
    if :: to == HOME || phase == ASKED -> fx_setup = 1; fx_borrower = 1 :: else -> skip fi;
    phase = to; borrowed = who
}

/* csignal_doorbell(holder): the borrower while LENT, else the wait thread. */
inline ring_holder() {
    if
    :: phase == LENT -> if :: b_blocks_internal -> db_b = 1 :: else -> skip fi
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
    atomic { assert(seq > last_recorded); last_recorded = seq; ring++ }
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
          :: else -> move(LENT, 1)
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

active proctype Borrower() {
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
        b_blocks_internal = 1;
#endif
        if
        :: atomic { phase == LAZY && borrowed && !reclaim -> move(LENT, 1) };
           lease_armed = 0;
           goto holding
        :: atomic { phase == HOME &&
#ifndef BROKEN_BORROW_DURING_RECLAIM
                    !reclaim &&
#endif
                    1 -> phase = ASKED; borrowed = 1 };
           db_w = 1;
           do
           :: atomic { fx_borrower = 0; seen_phase = phase; seen_reclaim = reclaim };
              if
              :: seen_phase == LENT -> goto holding
              :: seen_phase == HOME -> goto refused
              :: seen_phase == ASKED ->
                 if
                 :: atomic { phase == ASKED -> move(HOME, 0) }; goto refused   /* timed out */
                 :: atomic { phase != seen_phase || reclaim != seen_reclaim || fx_borrower }  /* futex wait */
                 fi
              fi
           od
        :: else -> goto refused
        fi;
refused:
        atomic { b_blocks_internal = 0; db_b = 0 };
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
            if
            :: take_and_record(seq, excluded, phase == LENT && borrowed)
            :: atomic { db_b -> db_b = 0; drain_pending = 0 }
            :: skip                   /* timed out */
            fi;
            ring = 0;                 /* the pump */
            if :: reclaim -> break :: else -> skip fi
        od;
        /* hand the event over, and give the role back: at once, or lazily */
        if
        :: atomic { !reclaim && phase == LENT ->
#ifdef BROKEN_ARM_BEFORE_LAZY
              lease_armed = 1 };
              atomic { move(LAZY, 1) };
#else
              move(LAZY, 1) };
              lease_armed = 1;        /* armed after the move: the lease runs from LAZY */
#endif
              atomic { b_blocks_internal = 0; db_b = 0 }
        :: atomic { move(HOME, 0) };  /* csignal_borrow_end */
           db_w = 1;
           atomic { b_blocks_internal = 0; db_b = 0 }
        fi;
next:
        skip
    od;
    b_done = 1
}

active proctype Timer() {
end_timer:
    do
    :: atomic { lease_armed -> lease_armed = 0; db_w = 1 }
    od
}

/* A fallback handler on some other thread: records a delivery, then rings the holder. */
active proctype Handler() {
    atomic { ring++ };
    role_ring();
    h_done = 1
}

/* A lossless subscription that fills up (the pump holds the signal), then is read (unhold rings the holder). */
active proctype Consumer() {
    held = 1;
    held = 0;
    role_ring();
    c_done = 1
}

inline reclaim_role() {
    atomic { !reclaim -> reclaim = 1; fx_setup = 1; fx_borrower = 1 };
    do
    :: atomic { fx_setup = 0; seen_phase = phase; seen_borrowed = borrowed };   /* one load of the role word */
       if
       :: seen_phase == HOME -> break
       :: else ->
           ring_holder();
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

active proctype Setup() {
    byte seen_phase;
    bit seen_borrowed;
    /* watch (or unwatch: the same steps) */
    reclaim_role();
    apply_watched();
    atomic { reclaim = 0; fx_setup = 1; fx_borrower = 1 };
#ifdef WITH_STOP
    reclaim_role();
    apply_watched();
    stop_state = 1;
    db_w = 1;
    (w_exited);
#endif
    setup_done = 1
}

active proctype Quiescence() {
    /* Nothing can move any more: every promise must hold. */
    timeout ->
#ifdef WITH_STOP
        assert(setup_done && w_exited)
#else
        assert(setup_done);
        assert(kq == 0);    /* no watched signal left in the kernel with nobody to take it */
        assert(ring == 0)   /* no record left unpumped */
#endif
}
