// CBench: the shared-memory ping-pong every benchmark receiver speaks, and the sender side of it.
//
// One page in /dev/shm, mapped by the driver (sender) and one receiver process. Each watched signal has a slot;
// the receiver's user code calls bench_seen() the moment it sees a delivery, which stamps CLOCK_MONOTONIC and
// bumps the slot's `received` counter. The driver stamps CLOCK_MONOTONIC immediately before its sigqueue and
// waits for `received` to move, either asleep on a futex or spinning first (the two driver modes):
// latency = recv_ns - send stamp. The Python, Go and Rust receivers (Benchmarks/Receivers/) mirror the
// offsets; the _Static_asserts in bench.c pin them.
//
// Where each function may run: cbench_seen and cbench_seen_many are ASYNC-SIGNAL-SAFE (the C sigaction
// receiver calls them from its handler: clock_gettime, atomic builtins, the futex system call). Everything
// else is NOT SAFE: ordinary threads only.
//
// Swift 6 cannot import _Atomic fields, so the fields are plain and every access goes through the
// __atomic builtins in the static inline functions below.
#ifndef CBENCH_H
#define CBENCH_H

#ifdef __linux__

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Slots: 0 = SIGUSR1 (latency, standard flood), 1 = SIGRTMIN+1 (real-time flood).
///
/// The real-time signal is SIGRTMIN+1, not SIGRTMIN, because the Go runtime reserves signal 34 (glibc's SIGRTMIN,
/// musl's SIGSYNCCALL) for itself: os/signal cannot watch it, and every receiver must watch the same signal.
#define CBENCH_SLOTS 2

typedef struct cbench_slot {
    uint64_t received;      ///< deliveries user code saw (the driver futex-waits on the low 32 bits)
    int64_t recv_ns;        ///< CLOCK_MONOTONIC of the latest one
    uint64_t last_value;    ///< sigqueue value of the latest one (0 when the receiver cannot see values)
    uint64_t out_of_order;  ///< deliveries whose value was not last_value + 1
    int64_t first_ns;       ///< CLOCK_MONOTONIC of the first delivery
    uint64_t pad[3];
} cbench_slot;

typedef struct cbench_shm {
    uint64_t ready;         ///< receiver: 1 once it is set up and waiting
    uint64_t wake_driver;   ///< driver: 1 while it sleeps on a futex and wants a FUTEX_WAKE per delivery
    uint64_t pad0[6];
    cbench_slot slot[CBENCH_SLOTS];
    // Results of the cost modes (poll check, allocation counts), written by the receiver once.
    uint64_t result_ready;
    double result[8];
} cbench_shm;

#define CBENCH_SHM_SIZE 4096

/// Maps (and with `create`, creates and zeroes) the shared page at `path`. NULL on failure (errno set).
cbench_shm *cbench_map(const char *path, int create);

int64_t cbench_now_ns(void);
/// The real-time signal of slot 1: SIGRTMIN+1 as the running C library defines it (SIGRTMIN is a macro calling
/// a function: Swift cannot import it). The driver passes the number to every receiver in CBENCH_RT_SIGNAL.
int cbench_rt_signal(void);

/// The receiver saw a delivery for `slot` carrying `value` (pass 0 when the receiver cannot see values).
/// Stamps first, then publishes: recv_ns, last_value, out_of_order, then `received` with release order, so a
/// driver that sees the count move reads this delivery's stamp.
void cbench_seen(cbench_shm *shm, int slot, uint64_t value);
/// Same as cbench_seen for `count` deliveries at once (the poll path learns counts, not values).
void cbench_seen_many(cbench_shm *shm, int slot, uint64_t count);

static inline uint64_t cbench_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cbench_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void cbench_set_ready(cbench_shm *shm) { cbench_store(&shm->ready, 1); }
static inline uint64_t cbench_received(cbench_shm *shm, int slot) { return cbench_load(&shm->slot[slot].received); }
void cbench_publish_results(cbench_shm *shm, const double *values, int count);

// MARK: - Driver side

/// One ping: stamps CLOCK_MONOTONIC, sigqueue(pid, signo, value) (retrying EAGAIN), then waits until the slot's
/// `received` moves past its value before the send: first spinning on it (a pause instruction per check) for
/// up to `spin_ns` after the send, then asleep on a futex. `spin_ns` 0 is the sleeping driver; a positive one
/// keeps the sender's CPU busy while the answer is near, as a loaded sender's would be. Returns 0 and the
/// latency in *latency_ns, ETIMEDOUT if nothing arrived within timeout_ns, or the sigqueue errno.
int cbench_ping(cbench_shm *shm, int slot, pid_t pid, int signo, int value, int64_t spin_ns, int64_t timeout_ns,
                int64_t *latency_ns);

/// Keeps this CPU busy for `ns` nanoseconds (reads the clock with a pause instruction between reads).
void cbench_spin_ns(int64_t ns);

typedef struct cbench_flood_result {
    int64_t start_ns;       ///< before the first send
    int64_t sent_ns;        ///< after the last send
    uint64_t retries;       ///< EAGAIN retries (kernel queue full)
    int error;              ///< errno of a failed send, or 0
} cbench_flood_result;

/// Sends `count` signals flat out: sigqueue with values 1...count when `queued`, else kill.
cbench_flood_result cbench_flood(pid_t pid, int signo, uint64_t count, int queued);

/// Sleeps `ns` nanoseconds (clock_nanosleep, restarted on EINTR).
void cbench_sleep_ns(int64_t ns);

/// Voluntary context switches (a thread went to sleep: each one is a later wake-up) of every thread of `pid`,
/// from /proc/PID/task/*/status. -1 on failure.
int64_t cbench_process_sleeps(pid_t pid);

/// Sum of on-CPU time (ns) of every thread of `pid`, from /proc/PID/task/*/schedstat. -1 on failure.
int64_t cbench_process_cpu_ns(pid_t pid);

#ifdef __cplusplus
}
#endif

#endif // __linux__
#endif // CBENCH_H
