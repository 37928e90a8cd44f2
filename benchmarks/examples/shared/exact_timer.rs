//! A wait that lasts what it was asked for: a `timerfd` awaited through tokio's reactor.
//!
//! `tokio::time::sleep` rounds its deadline up to the next millisecond tick and parks with a
//! whole-millisecond `epoll_wait` timeout, so a 5 ms sleep lasts about 6 ms on any runtime.
//! That caps a 5 ms handler at N / 6 ms whatever the runtime does; a real downstream call
//! answers when it answers. The concurrency benchmark measures both waits; every concurrent
//! subject includes this same file.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Disarmed timers, kept so that a wait costs two system calls (arm, read), not six.
static IDLE: Mutex<Vec<AsyncFd<OwnedFd>>> = Mutex::new(Vec::new());

/// The benchmark handler's wait: 5 ms on tokio's timer, or on an exact one when the event
/// says `{"timer": "exact"}`.
pub async fn wait_5ms(event: &serde_json::Value) -> io::Result<()> {
    const WAIT: Duration = Duration::from_millis(5);
    if event.get("timer").and_then(serde_json::Value::as_str) == Some("exact") {
        wait(WAIT).await
    } else {
        tokio::time::sleep(WAIT).await;
        Ok(())
    }
}

/// Waits `duration` on a `CLOCK_MONOTONIC` timer.
async fn wait(duration: Duration) -> io::Result<()> {
    let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let timer = match idle {
        Some(timer) => timer,
        None => new_timer()?,
    };
    arm(&timer, duration)?;
    loop {
        let mut ready = timer.readable().await?;
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer from an open descriptor.
        let read = unsafe { libc::read(timer.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
        if read == 8 {
            // One-shot and drained: nothing can make it readable before it is armed again.
            ready.clear_ready();
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock {
            return Err(e);
        }
        ready.clear_ready();
    }
    IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(timer);
    Ok(())
}

fn new_timer() -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain system call; the descriptor is owned below.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `timerfd_create` and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the `OwnedFd` stays open, and stays this descriptor, until the `AsyncFd`
    // that owns it is dropped.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
}

fn arm(timer: &AsyncFd<OwnedFd>, duration: Duration) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: duration.as_secs() as libc::time_t,
            tv_nsec: duration.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
    let set = unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
