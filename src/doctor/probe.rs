//! The connect probe: one nonblocking `connect()` bounded by a timeout, classified the way the
//! table's rows are told apart (RST to the SYN, no answer, ICMP error, RST after the handshake).
//! It goes only to the address the user named.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::model::{ProbeOutcome, ProbeResult};

/// After the handshake, how long to watch for a RST before calling it connected: a server that
/// accepts and aborts (SO_LINGER 0) answers within this window, a healthy one stays quiet.
pub const RESET_WINDOW: Duration = Duration::from_millis(200);

/// Connects to `target` in the calling thread's namespace and classifies what happened.
pub fn probe(target: SocketAddr, timeout: Duration) -> io::Result<ProbeResult> {
    let domain = if target.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket() has no preconditions; the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let (sa, len) = sockaddr(&target);
    let start = Instant::now();
    // SAFETY: sa is a valid sockaddr of length len.
    let rc = unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len) };
    let mut result = ProbeResult {
        target,
        // The kernel picks the local port in connect(); a refused connect may already have
        // released it (port 0 then: unknown).
        local: local_addr(&sock).filter(|a| a.port() != 0),
        outcome: ProbeOutcome::Connected,
        connect_us: None,
        waited_us: 0,
        errno: None,
    };
    let done = |mut r: ProbeResult, outcome, errno: Option<i32>| {
        r.outcome = outcome;
        r.errno = errno.map(errno_name);
        r.waited_us = us(start.elapsed());
        Ok(r)
    };
    if rc != 0 {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if e != libc::EINPROGRESS {
            return done(result, classify(e), Some(e));
        }
        let ready = poll(&sock, libc::POLLOUT, timeout)?;
        if ready == 0 {
            return done(result, ProbeOutcome::TimedOut, None);
        }
        let err = so_error(&sock)?;
        if err != 0 {
            return done(result, classify(err), Some(err));
        }
    }
    result.connect_us = Some(us(start.elapsed()));
    let window = RESET_WINDOW.min(timeout.saturating_sub(start.elapsed()));
    let rev = poll(&sock, libc::POLLIN | libc::POLLRDHUP, window)?;
    if rev & (libc::POLLERR | libc::POLLHUP | libc::POLLIN | libc::POLLRDHUP) != 0 {
        let err = so_error(&sock)?;
        if err == libc::ECONNRESET || err == libc::EPIPE {
            return done(result, ProbeOutcome::Reset, Some(err));
        }
        // A RST already consumed into the socket error shows on read as ECONNRESET too.
        let mut b = [0u8; 1];
        // SAFETY: reading at most 1 byte into a local buffer.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::ECONNRESET {
                return done(result, ProbeOutcome::Reset, Some(e));
            }
        }
    }
    done(result, ProbeOutcome::Connected, None)
}

fn local_addr(fd: &OwnedFd) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; getsockname writes at most `len` bytes into it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above, on a socket we own.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel filled a sockaddr_in for an AF_INET socket.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read(&ss as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled a sockaddr_in6 for an AF_INET6 socket.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read(&ss as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

fn classify(errno: i32) -> ProbeOutcome {
    match errno {
        libc::ECONNREFUSED => ProbeOutcome::Refused,
        libc::ETIMEDOUT => ProbeOutcome::TimedOut,
        libc::ECONNRESET => ProbeOutcome::Reset,
        _ => ProbeOutcome::Unreachable,
    }
}

/// Polls one fd for `events`, returning the revents (0 on timeout). EINTR is retried with the
/// time that is left.
fn poll(fd: &OwnedFd, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32
            + i32::from(left.subsec_micros() % 1000 != 0);
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc >= 0 {
            return Ok(if rc == 0 { 0 } else { p.revents });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn so_error(fd: &OwnedFd) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt to write.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(err)
}

/// A duration in whole microseconds (JSON durations are `_us` integers).
fn us(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// The symbolic name of the errnos a connect can return; the number for others.
pub fn errno_name(e: i32) -> String {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNRESET => "ECONNRESET",
        libc::EPIPE => "EPIPE",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::ENETDOWN => "ENETDOWN",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        _ => return format!("errno {e}"),
    }
    .to_string()
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_to_a_local_listener_and_is_refused_by_a_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let r = probe(addr, Duration::from_secs(3)).unwrap();
        assert_eq!(r.outcome, ProbeOutcome::Connected);
        assert!(r.connect_us.is_some());
        let local = r.local.unwrap();
        assert_eq!(local.ip(), addr.ip());
        assert_ne!(local.port(), 0);
        drop(l);
        let r = probe(addr, Duration::from_secs(3)).unwrap();
        assert_eq!(r.outcome, ProbeOutcome::Refused);
        assert_eq!(r.errno.as_deref(), Some("ECONNREFUSED"));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EHOSTUNREACH), "EHOSTUNREACH");
        assert_eq!(errno_name(9999), "errno 9999");
    }
}
