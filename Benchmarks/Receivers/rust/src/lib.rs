//! The receiver's end of the benchmark's shared page, in Rust.
//!
//! The layout and the order of the writes are those of `Benchmarks/Sources/CBench` (`cbench_seen`): one page
//! in /dev/shm; `ready` at offset 0, `wake_driver` at 8, then one 64-byte slot per watched signal from offset
//! 64 (slot 0 = SIGUSR1, slot 1 = SIGRTMIN+1) holding `received` at 0, `recv_ns` at 8, `last_value` at 16,
//! `out_of_order` at 24 and `first_ns` at 32. `bench.c` pins these offsets with `_Static_assert`.
//!
//! `seen` is called by ordinary threads only (none of these receivers runs it in a signal handler).

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};

const READY: usize = 0;
const WAKE_DRIVER: usize = 8;
const SLOT_BASE: usize = 64;
const SLOT_SIZE: usize = 64;
const RECEIVED: usize = 0;
const RECV_NS: usize = 8;
const FIRST_NS: usize = 32;
const PAGE_SIZE: usize = 4096;

/// The shared page of one receiver, mapped from the path the driver passes as the first argument.
pub struct Page {
    base: *mut u8,
}

// The page is shared memory written only through atomics.
unsafe impl Send for Page {}
unsafe impl Sync for Page {}

impl Page {
    /// Maps the page named by the first command-line argument; exits with status 2 on failure.
    pub fn from_arguments() -> Page {
        let path = std::env::args().nth(1).unwrap_or_else(|| {
            eprintln!("usage: {} SHM", std::env::args().next().unwrap_or_default());
            std::process::exit(2)
        });
        let cpath = CString::new(path.clone()).expect("path without NUL");
        // SAFETY: plain system calls on a file descriptor this function owns.
        unsafe {
            let fd = libc::open(cpath.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                eprintln!("open {}: {}", path, std::io::Error::last_os_error());
                std::process::exit(2)
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            libc::close(fd);
            if p == libc::MAP_FAILED {
                eprintln!("mmap {}: {}", path, std::io::Error::last_os_error());
                std::process::exit(2)
            }
            Page { base: p as *mut u8 }
        }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset + 8 <= PAGE_SIZE && offset % 8 == 0);
        // SAFETY: the mapping lives as long as the process, and the offset is 8-aligned inside the page.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    fn slot_word(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.word(SLOT_BASE + slot * SLOT_SIZE + field)
    }

    /// Tells the driver that the receiver is set up and waiting.
    pub fn set_ready(&self) {
        self.word(READY).store(1, Ordering::Release);
    }

    /// User code saw `count` deliveries for `slot` (these receivers learn no sigqueue values).
    ///
    /// Same order as `cbench_seen`: stamp, then `recv_ns` (and `first_ns`), then `received` with release
    /// order so that a driver that sees the count move reads this stamp; then a futex wake when the driver
    /// sleeps on the count.
    pub fn seen(&self, slot: usize, count: u64) {
        let now = now_ns();
        let received = self.slot_word(slot, RECEIVED);
        let before = received.load(Ordering::Relaxed);
        self.slot_word(slot, RECV_NS)
            .store(now as u64, Ordering::Relaxed);
        if before == 0 {
            self.slot_word(slot, FIRST_NS)
                .store(now as u64, Ordering::Relaxed);
        }
        received.store(before + count, Ordering::Release);
        if self.word(WAKE_DRIVER).load(Ordering::Acquire) != 0 {
            // A shared (not private) futex: the driver waits on the same page from another process.
            // SAFETY: the address is a word of the mapped page.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    received as *const AtomicU64 as *const u32,
                    libc::FUTEX_WAKE,
                    i32::MAX,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<u32>(),
                    0,
                );
            }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds (glibc's clock_gettime: the vDSO, no system call).
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// The real-time signal of the floods: SIGRTMIN+1 (the Go peer cannot watch SIGRTMIN; CBench.h says why).
pub fn realtime_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

/// The slot of a watched signal: 0 for SIGUSR1, 1 for SIGRTMIN+1.
pub fn slot_of(signal: libc::c_int) -> usize {
    if signal == libc::SIGUSR1 {
        0
    } else {
        1
    }
}
