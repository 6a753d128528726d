// EXPECT-VIOLATION: on_signal -> record -> bump -> pthread_mutex_lock
// The unsafe call sits two static functions deep, behind a function not named *_handler that is installed
// with sigaction: the audit must find the entry point by its installation and follow local calls.
#include <pthread.h>
#include <signal.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int counter;

__attribute__((noinline)) static void bump(void) {
    pthread_mutex_lock(&lock);
    counter++;
    pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) static void record(int signo) {
    if (signo > 0) bump();
}

static void on_signal(int signo) { record(signo); }

int csignal_fixture_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    return sigaction(signo, &sa, NULL);
}
