//! Name resolution off the I/O thread, on a small pool of threads shared by every connection
//! in the process: `getaddrinfo` blocks, and a thread per attempt would mean 10,000 threads
//! for 10,000 connects to `localhost`. At most [`MAX_THREADS`] run; each ends after
//! [`IDLE`] without work, so an idle process keeps none. IP literals never come here. The
//! price of the bound: while every resolver thread waits on a slow DNS server, further
//! lookups queue behind them (each attempt still ends at its connect timeout).

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};

/// The most resolver threads at once.
const MAX_THREADS: usize = 8;

/// How long a resolver thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// The process's resolver pool.
struct Pool {
    jobs: flume::Sender<Job>,
    queue: flume::Receiver<Job>,
    /// Threads alive, and how many of them wait for work. Changed only with the lock held,
    /// as jobs are queued under it too: a job never waits while its last thread ends.
    threads: Mutex<Threads>,
}

#[derive(Default)]
struct Threads {
    alive: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = flume::unbounded();
        Pool {
            jobs,
            queue,
            threads: Mutex::new(Threads::default()),
        }
    })
}

/// Runs `job` on a resolver thread, starting one if none waits for work and fewer than
/// [`MAX_THREADS`] run.
///
/// # Errors
/// [`Error::Runtime`] when no resolver thread runs and none can start.
pub(super) fn run(job: impl FnOnce() + Send + 'static) -> Result<()> {
    let pool = pool();
    let mut threads = pool.lock();
    // The pool owns both ends: the queue never disconnects.
    let _ = pool.jobs.send(Box::new(job));
    if threads.idle > 0 || threads.alive >= MAX_THREADS {
        return Ok(());
    }
    let started = std::thread::Builder::new()
        .name("nwebsocket-dns".into())
        .stack_size(128 << 10)
        .spawn(work);
    match started {
        Ok(_) => {
            threads.alive += 1;
            Ok(())
        }
        // A running thread will take the job.
        Err(_) if threads.alive > 0 => Ok(()),
        Err(err) => {
            // None will: take it back.
            let _ = pool.queue.try_recv();
            Err(Error::Runtime(err))
        }
    }
}

/// A resolver thread: runs jobs until none came for [`IDLE`].
fn work() {
    let pool = pool();
    loop {
        pool.lock().idle += 1;
        let next = pool.queue.recv_timeout(IDLE);
        let mut threads = pool.lock();
        threads.idle -= 1;
        match next {
            Ok(job) => {
                drop(threads);
                // A job that panics must not take its thread's place in the count with it:
                // the pool would believe it still runs, and lookups would wait for ever.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            // A job queued since the timeout is taken on the next turn.
            Err(_) if !pool.queue.is_empty() => {}
            Err(_) => {
                threads.alive -= 1;
                return;
            }
        }
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Threads> {
        // Each update of the counts is one statement: a panic cannot leave them half-done.
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_jobs_run_on_a_bounded_number_of_threads() {
        let (done_tx, done_rx) = flume::unbounded();
        let (go_tx, go_rx) = flume::unbounded::<()>();
        for i in 0..64 {
            let (done_tx, go_rx) = (done_tx.clone(), go_rx.clone());
            run(move || {
                // Held until released, so that the pool cannot reuse a thread meanwhile.
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
                let name = std::thread::current().name().map(str::to_owned);
                done_tx.send((i, name)).unwrap();
            })
            .unwrap();
        }
        assert!(pool().lock().alive <= MAX_THREADS);
        drop(go_tx);
        let mut seen: Vec<u32> = Vec::new();
        for _ in 0..64 {
            let (i, name) = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(name.as_deref(), Some("nwebsocket-dns"));
            seen.push(i);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        assert!(pool().lock().alive <= MAX_THREADS);
    }
}
