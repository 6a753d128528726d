//! signal-hook's flags in a spinning loop: `flag::register` sets an `AtomicBool` from the handler, and the
//! main thread spins checking both flags. The peer of SignalCore's spinning poll.
//!
//!     bench-signal-hook-flag SHM
//!
//! The loop reads each flag with a plain load and swaps it back to false only when it is set, so a spin costs
//! one load per flag, not a locked read-modify-write, and no pause instruction (SignalCore's poll loop has none
//! either). Relaxed ordering is enough: the flag is the only data
//! the signal carries (signal-hook's `flag` module documentation says the same).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::flag;
use signalcore_bench_peers::{realtime_signal, Page};

fn main() {
    let page = Page::from_arguments();
    let usr1 = Arc::new(AtomicBool::new(false));
    let realtime = Arc::new(AtomicBool::new(false));
    let registered = flag::register(libc::SIGUSR1, Arc::clone(&usr1))
        .and_then(|_| flag::register(realtime_signal(), Arc::clone(&realtime)));
    if let Err(error) = registered {
        eprintln!("flag::register: {error}");
        std::process::exit(1)
    }
    page.set_ready();
    loop {
        if usr1.load(Ordering::Relaxed) && usr1.swap(false, Ordering::Relaxed) {
            page.seen(0, 1);
        }
        if realtime.load(Ordering::Relaxed) && realtime.swap(false, Ordering::Relaxed) {
            page.seen(1, 1);
        }
    }
}
