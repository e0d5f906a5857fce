//! Waits shorter than a millisecond. `Poll::poll` rounds its timeout up to whole
//! milliseconds, so a wait of 100 µs (a long burst of sends gathering for a larger write)
//! would last ten times as long. On Linux a timerfd, registered with the thread's poller
//! and armed only for such short waits, wakes the thread on time. It is made on the first
//! short wait, so a thread that never waits briefly holds no extra descriptor. Elsewhere,
//! or if the timerfd cannot be made, a short wait lasts the poller's millisecond.

use std::time::{Duration, Instant};

use mio::{Registry, Token};

/// A poll timeout finer than a millisecond, for one thread's poller.
#[derive(Debug)]
pub(super) struct FineTimer {
    /// The token the timerfd registers with; its events only wake the thread.
    token: Token,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: Option<std::os::fd::OwnedFd>,
    /// Making or registering the timerfd failed once: not tried again.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unavailable: bool,
}

/// What `Poll::poll` can time without help.
const POLL_GRAIN: Duration = Duration::from_millis(1);

impl FineTimer {
    pub(super) fn new(token: Token) -> Self {
        FineTimer {
            token,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            fd: None,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            unavailable: false,
        }
    }

    /// The timeout to give `Poll::poll` to wake at `deadline` (`None`: no deadline). A
    /// wait under a millisecond arms the timerfd as well, which wakes the poll on time.
    pub(super) fn timeout(
        &mut self,
        registry: &Registry,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let wait = deadline?.saturating_duration_since(Instant::now());
        if !wait.is_zero() && wait < POLL_GRAIN {
            self.arm(registry, wait);
        }
        Some(wait)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn arm(&mut self, registry: &Registry, wait: Duration) {
        use rustix::time::{
            Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
            timerfd_settime,
        };
        use std::os::fd::AsRawFd;

        if self.unavailable {
            return;
        }
        if self.fd.is_none() {
            let made = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
            )
            .map_err(std::io::Error::from)
            .and_then(|fd| {
                let raw = fd.as_raw_fd();
                registry
                    .register(
                        &mut mio::unix::SourceFd(&raw),
                        self.token,
                        mio::Interest::READABLE,
                    )
                    .map(|()| fd)
            });
            match made {
                Ok(fd) => self.fd = Some(fd),
                Err(err) => {
                    log::debug!("no timerfd ({err}): short waits last a millisecond");
                    self.unavailable = true;
                    return;
                }
            }
        }
        let Some(fd) = &self.fd else {
            return;
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let once = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: 0,
                // Under a millisecond, and not zero (that would disarm it).
                tv_nsec: wait.subsec_nanos().max(1) as _,
            },
        };
        // Setting it also clears an expiry not read: the next one is a fresh edge.
        if let Err(err) = timerfd_settime(fd, TimerfdTimerFlags::empty(), &once) {
            log::debug!("could not arm the timerfd ({err}): this wait lasts a millisecond");
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn arm(&mut self, _registry: &Registry, _wait: Duration) {
        let _ = self.token;
    }
}
