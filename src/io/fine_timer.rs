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
    /// The last wait armed the timerfd.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    armed: bool,
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
            #[cfg(any(target_os = "linux", target_os = "android"))]
            armed: false,
        }
    }

    /// The timeout to give `Poll::poll` to wake at `deadline` (`None`: no deadline). A
    /// wait under a millisecond arms the timerfd as well, which wakes the poll on time. Any
    /// other wait disarms it if an earlier short wait armed it (and was ended by something
    /// else), so that it wakes no thread that has nothing to do.
    pub(super) fn timeout(
        &mut self,
        registry: &Registry,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let wait = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match wait {
            Some(wait) if !wait.is_zero() && wait < POLL_GRAIN => self.arm(registry, wait),
            _ => self.disarm(),
        }
        wait
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn arm(&mut self, registry: &Registry, wait: Duration) {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
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
        // Under a millisecond, and not zero (that would disarm it).
        let nanos = wait.subsec_nanos().max(1);
        if self.set(nanos) {
            self.armed = true;
        } else {
            log::debug!("could not arm the timerfd: this wait lasts a millisecond");
        }
    }

    /// Also when it has expired already: setting it clears the expiry, which the thread has
    /// not read, so that the poll does not return at once for it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.set(0);
        }
    }

    /// Sets the timerfd to expire once in `nanos` (0: never). Setting it also clears an
    /// expiry not read, so that the next one is a fresh edge. Returns whether it worked.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn set(&self, nanos: u32) -> bool {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};

        let Some(fd) = &self.fd else {
            return false;
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let once = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: 0,
                tv_nsec: nanos as _,
            },
        };
        timerfd_settime(fd, TimerfdTimerFlags::empty(), &once).is_ok()
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn arm(&mut self, _registry: &Registry, _wait: Duration) {
        let _ = self.token;
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn disarm(&mut self) {}
}
