//! signal-hook's iterator, as its documentation shows it: `Signals::new` over SIGUSR1 and SIGRTMIN+1 and a
//! `for` loop over `forever()` on the main thread. User code sees the signal when the loop body runs.
//!
//!     bench-signal-hook SHM

use signal_hook::iterator::Signals;
use signalcore_bench_peers::{realtime_signal, slot_of, Page};

fn main() {
    let page = Page::from_arguments();
    let mut signals = Signals::new([libc::SIGUSR1, realtime_signal()]).unwrap_or_else(|error| {
        eprintln!("Signals::new: {error}");
        std::process::exit(1)
    });
    page.set_ready();
    for signal in signals.forever() {
        page.seen(slot_of(signal), 1);
    }
}
