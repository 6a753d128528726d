// EXPECT-VIOLATION: futex in handler context must be FUTEX_WAKE
// `syscall` is allowed as glibc's raw stub, but not every system call is: a futex wait would block the
// interrupted thread inside the handler. The audit reads the futex operation and refuses anything but a wake.
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t word;

static void csignal_fixture_futex_handler(int signo) {
    (void)signo;
    syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

int csignal_fixture_futex_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = csignal_fixture_futex_handler;
    return sigaction(signo, &sa, NULL);
}
