// The C reference receivers: what a program gets with no library at all.
//
//   BenchCReceiver sigwaitinfo SHM   a dedicated thread in sigwaitinfo(), the signals blocked in every thread
//                                    (the floor: SignalCore's wait thread does this plus recording)
//   BenchCReceiver sigaction SHM     an SA_SIGINFO handler; the main thread sleeps in pause()
//
// Both watch SIGUSR1 (slot 0) and SIGRTMIN+1 (slot 1) and call cbench_seen() at the moment "user code" sees
// the delivery: right after sigwaitinfo returns, or first thing in the handler. The driver SIGKILLs them.
#ifndef _GNU_SOURCE
#error "BenchCReceiver needs _GNU_SOURCE"
#endif
#include "CBench.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cbench_shm *shm;

static int slot_of(int signo) { return signo == SIGUSR1 ? 0 : 1; }

static void *wait_thread(void *arg) {
    sigset_t *set = arg;
    siginfo_t info;
    for (;;) {
        int signo = sigwaitinfo(set, &info);
        if (signo < 0) {
            if (errno == EINTR) continue;
            perror("sigwaitinfo");
            exit(2);
        }
        cbench_seen(shm, slot_of(signo), (uint64_t)(uint32_t)info.si_value.sival_int * (info.si_code == SI_QUEUE));
    }
    return NULL;
}

static void handler(int signo, siginfo_t *info, void *context) {
    (void)context;
    cbench_seen(shm, slot_of(signo), (uint64_t)(uint32_t)info->si_value.sival_int * (info->si_code == SI_QUEUE));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: BenchCReceiver sigwaitinfo|sigaction SHM\n");
        return 2;
    }
    shm = cbench_map(argv[2], 0);
    if (shm == NULL) {
        perror("cbench_map");
        return 2;
    }
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, cbench_rt_signal());

    if (strcmp(argv[1], "sigwaitinfo") == 0) {
        pthread_sigmask(SIG_BLOCK, &set, NULL);  // before the thread exists: it and main both block them
        pthread_t thread;
        if (pthread_create(&thread, NULL, wait_thread, &set) != 0) return 2;
    } else if (strcmp(argv[1], "sigaction") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = handler;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(SIGUSR1, &sa, NULL) != 0 || sigaction(cbench_rt_signal(), &sa, NULL) != 0) {
            perror("sigaction");
            return 2;
        }
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    cbench_set_ready(shm);
    for (;;) pause();
}
