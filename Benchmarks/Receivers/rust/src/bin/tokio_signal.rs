//! tokio::signal on tokio's default runtime (`#[tokio::main]`: multi-threaded, one worker per CPU): one
//! `Signal` stream per watched signal and a `select!` loop in the main task. User code sees the signal when
//! `recv()` returns.
//!
//!     bench-tokio SHM

use signalcore_bench_peers::{realtime_signal, Page};
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() {
    let page = Page::from_arguments();
    let streams = signal(SignalKind::user_defined1())
        .and_then(|usr1| Ok((usr1, signal(SignalKind::from_raw(realtime_signal()))?)));
    let (mut usr1, mut realtime) = streams.unwrap_or_else(|error| {
        eprintln!("tokio::signal::unix::signal: {error}");
        std::process::exit(1)
    });
    page.set_ready();
    loop {
        tokio::select! {
            Some(()) = usr1.recv() => page.seen(0, 1),
            Some(()) = realtime.recv() => page.seen(1, 1),
        }
    }
}
