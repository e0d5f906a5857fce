//! What one measured stretch of a workload cost: its wall time and the CPU of the client's
//! threads and of the server's, read from `/proc` thread by thread.

use std::time::{Duration, Instant};

use crate::sys::{self, TaskStat};

/// The threads that are the client: the main thread (which runs every workload) and
/// nwebsocket's own (`nwebsocket-io` and its helpers).
fn is_client(tid: u32, name: &str) -> bool {
    tid == sys::main_tid() || name.starts_with("nwebsocket")
}

/// The threads that serve a connection (`server.rs` names them).
fn is_server(_tid: u32, name: &str) -> bool {
    name == "srv-conn"
}

/// Brings the calling thread's CPU time in `/proc` up to date. The kernel adds a running
/// thread's time to its `schedstat` only at a tick or when the thread leaves the CPU, so
/// without this the main thread's figure lags by up to a tick (4 ms at 250 Hz): most of a
/// short round. `sched_yield` accounts the time (`update_curr`) even when it returns at once.
/// Other threads that run on another CPU in that moment still lag by up to a tick each.
fn settle_own_time() {
    std::thread::yield_now();
}

/// A measurement that has started.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    client: Vec<(u32, TaskStat)>,
    server: Vec<(u32, TaskStat)>,
}

/// What a [`Meter`] saw between its start and its stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) elapsed: Duration,
    pub(crate) client: TaskStat,
    pub(crate) server: TaskStat,
}

impl Meter {
    pub(crate) fn start() -> Meter {
        settle_own_time();
        let client = sys::tasks_snapshot(is_client);
        let server = sys::tasks_snapshot(is_server);
        Meter {
            start: Instant::now(),
            client,
            server,
        }
    }

    pub(crate) fn stop(&self) -> Measured {
        let elapsed = self.start.elapsed();
        settle_own_time();
        Measured {
            elapsed,
            client: sys::used_since(&self.client, &sys::tasks_snapshot(is_client)),
            server: sys::used_since(&self.server, &sys::tasks_snapshot(is_server)),
        }
    }
}

impl Measured {
    /// Messages per second over `n` messages.
    pub(crate) fn rate(&self, n: usize) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }

    /// The client's CPU nanoseconds per message over `n` messages.
    pub(crate) fn client_ns_per(&self, n: usize) -> f64 {
        self.client.cpu_ns as f64 / n as f64
    }

    /// The server's CPU time as a share of the wall time, in percent of one CPU: near 100
    /// means that the server, not the client, set the pace.
    pub(crate) fn server_share(&self) -> f64 {
        self.server.cpu_ns as f64 * 100.0 / self.elapsed.as_nanos() as f64
    }

    /// Per-message figures of a throughput run: messages/s, client CPU ns per message, the
    /// server's CPU share (percent of one CPU), and per 1,000 messages the times a client
    /// thread went to sleep (voluntary context switches) and was preempted (involuntary ones).
    pub(crate) fn throughput(&self, n: usize) -> Vec<f64> {
        let per_k = 1000.0 / n as f64;
        vec![
            self.rate(n),
            self.client_ns_per(n),
            self.server_share(),
            self.client.sleeps as f64 * per_k,
            self.client.switches.saturating_sub(self.client.sleeps) as f64 * per_k,
        ]
    }
}
