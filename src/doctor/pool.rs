//! Connection-pool sizing, as the lesson's "By the numbers" works it: Little's law for the
//! connections in flight (L = λ·W), 25% headroom, K upstreams × P connections against the fd
//! limit, and a keep-alive idle timeout a margin below the upstream's. Pure arithmetic.

use std::time::Duration;

use serde::Serialize;

/// Headroom on top of the in-flight count.
pub const HEADROOM_PERCENT: u64 = 25;
/// The most fds one process can ever hold: the kernel caps fs.nr_open (and so RLIMIT_NOFILE)
/// at `INT_MAX` rounded down to a multiple of BITS_PER_LONG (`sysctl_nr_open_max`, 64-bit).
/// A pool larger than this is not a pool any process could open.
pub const MAX_PROCESS_FDS: u64 = 2_147_483_584;
/// Keep-alive idle timeout margin below the upstream's idle timeout (the lesson's 55 s for 60 s).
pub const IDLE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
pub struct PoolInput {
    pub qps: f64,
    pub latency: Duration,
    pub upstreams: u64,
    pub fd_limit: u64,
    /// Where the limit came from (`--fd-limit` or this process's soft RLIMIT_NOFILE).
    pub fd_limit_source: &'static str,
    pub upstream_idle_timeout: Duration,
    /// Network round trip, when given: prices a new connection (TCP + TLS 1.3 handshakes).
    pub rtt: Option<Duration>,
}

/// What a new connection costs against a pooled one (only with `--rtt`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupCost {
    pub rtt_ms: f64,
    /// TCP handshake (1 RTT) + TLS 1.3 handshake (1 RTT).
    pub new_connection_ms: f64,
    /// A call on a fresh connection: setup + latency.
    pub call_without_pool_ms: f64,
    /// A call on a pooled connection: latency only.
    pub call_with_pool_ms: f64,
    /// 1,000 sequential calls without reuse, in seconds.
    pub thousand_calls_without_pool_s: f64,
    pub thousand_calls_with_pool_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolPlan {
    pub qps: f64,
    pub latency_ms: f64,
    /// L = qps × latency: requests in flight at peak.
    pub in_flight: f64,
    /// ceil(in_flight) × 1.25, rounded up: the pool's maximum size per upstream.
    pub pool_max: u64,
    pub headroom_percent: u64,
    pub upstreams: u64,
    /// upstreams × pool_max: fds the pools hold when full.
    pub pool_fds: u64,
    pub fd_limit: u64,
    pub fd_limit_source: &'static str,
    /// pool_fds as a percentage of fd_limit.
    pub fd_percent: f64,
    pub fits: bool,
    pub upstream_idle_timeout_s: f64,
    /// Set the client's keep-alive idle timeout to this (below the upstream's).
    pub keepalive_idle_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupCost>,
}

/// Inputs that give no pool a process could hold (usage errors: exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    #[error(
        "{} req/s × {} ms is {} requests in flight: no process can hold a pool that size \
         (the kernel caps a process at {MAX_PROCESS_FDS} open fds); check --qps and --latency",
        short(*.qps), short(*.latency_ms), short(*.in_flight)
    )]
    TooLarge {
        qps: f64,
        latency_ms: f64,
        in_flight: f64,
    },
    #[error(
        "{upstreams} upstreams × {pool_max} connections is more fds than any process can \
         hold (the kernel caps a process at {MAX_PROCESS_FDS}); check --upstreams"
    )]
    TooManyUpstreams { upstreams: u64, pool_max: u64 },
}

/// A number for a message: plain when it reads well, else in e-notation ("3.6e311", "inf").
fn short(v: f64) -> String {
    if v == f64::INFINITY {
        // qps × latency overflowed the float itself.
        format!("over {:.1e}", f64::MAX)
    } else if v.is_finite() && v.abs() < 1e15 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Rounds up, ignoring float noise below a millionth (2000 × 0.05 is 100, not 101).
fn ceil(x: f64) -> u64 {
    (x - 1e-6).ceil().max(0.0) as u64
}

pub fn plan(i: &PoolInput) -> Result<PoolPlan, PoolError> {
    let lat_s = i.latency.as_secs_f64();
    let in_flight = i.qps * lat_s;
    // Checked before any integer arithmetic: a float past u64 would saturate, and ×1.25
    // would then wrap into a plausible-looking number.
    let too_large = PoolError::TooLarge {
        qps: i.qps,
        latency_ms: lat_s * 1e3,
        in_flight,
    };
    if !in_flight.is_finite() || in_flight > MAX_PROCESS_FDS as f64 {
        return Err(too_large);
    }
    let base = ceil(in_flight).max(1);
    // ×1.25 in integers: ceil(base × 125 / 100).
    let pool_max = (base * (100 + HEADROOM_PERCENT)).div_ceil(100);
    if pool_max > MAX_PROCESS_FDS {
        return Err(too_large);
    }
    let pool_fds = pool_max
        .checked_mul(i.upstreams)
        .filter(|&n| n <= MAX_PROCESS_FDS)
        .ok_or(PoolError::TooManyUpstreams {
            upstreams: i.upstreams,
            pool_max,
        })?;
    let idle = i.upstream_idle_timeout;
    // Below short timeouts a 5 s margin would leave nothing: use half instead.
    let keepalive = if idle > IDLE_MARGIN * 2 {
        idle - IDLE_MARGIN
    } else {
        idle / 2
    };
    let setup = i.rtt.map(|rtt| {
        let rtt_ms = rtt.as_secs_f64() * 1e3;
        let lat_ms = lat_s * 1e3;
        let new_connection_ms = 2.0 * rtt_ms;
        SetupCost {
            rtt_ms,
            new_connection_ms,
            call_without_pool_ms: new_connection_ms + lat_ms,
            call_with_pool_ms: lat_ms,
            thousand_calls_without_pool_s: (new_connection_ms + lat_ms),
            thousand_calls_with_pool_s: lat_ms,
        }
    });
    Ok(PoolPlan {
        qps: i.qps,
        latency_ms: lat_s * 1e3,
        in_flight,
        pool_max,
        headroom_percent: HEADROOM_PERCENT,
        upstreams: i.upstreams,
        pool_fds,
        fd_limit: i.fd_limit,
        fd_limit_source: i.fd_limit_source,
        fd_percent: if i.fd_limit > 0 {
            pool_fds as f64 * 100.0 / i.fd_limit as f64
        } else {
            f64::INFINITY
        },
        fits: pool_fds <= i.fd_limit,
        upstream_idle_timeout_s: idle.as_secs_f64(),
        keepalive_idle_s: keepalive.as_secs_f64(),
        setup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(qps: f64, latency_ms: u64, upstreams: u64, fd_limit: u64) -> PoolInput {
        PoolInput {
            qps,
            latency: Duration::from_millis(latency_ms),
            upstreams,
            fd_limit,
            fd_limit_source: "--fd-limit",
            upstream_idle_timeout: Duration::from_secs(60),
            rtt: Some(Duration::from_millis(50)),
        }
    }

    /// The lesson's scenario: 2,000 req/s at 50 ms → 100 in flight → pool of 125; three
    /// upstreams hold 375 fds of a 65,536 limit; 55 s keep-alive for a 60 s upstream timeout;
    /// a fresh TLS connection costs 100 ms at 50 ms RTT, so 1,000 sequential calls take 150 s
    /// without reuse and 50 s with it.
    #[test]
    fn the_lessons_worked_numbers() {
        let p = plan_ok(&input(2000.0, 50, 3, 65536));
        assert_eq!(p.in_flight, 100.0);
        assert_eq!(p.pool_max, 125);
        assert_eq!(p.pool_fds, 375);
        assert!(p.fits);
        assert_eq!(p.keepalive_idle_s, 55.0);
        let s = p.setup.unwrap();
        assert_eq!(s.new_connection_ms, 100.0);
        assert_eq!(s.call_without_pool_ms, 150.0);
        assert_eq!(s.call_with_pool_ms, 50.0);
        assert_eq!(s.thousand_calls_without_pool_s, 150.0);
        assert_eq!(s.thousand_calls_with_pool_s, 50.0);
    }

    fn plan_ok(i: &PoolInput) -> PoolPlan {
        plan(i).unwrap()
    }

    /// The input: 1e308 req/s for an hour printed "pool max 184467440737095515".
    #[test]
    fn sizes_no_process_could_hold_are_refused() {
        let mut i = input(1e308, 1, 1, 1024);
        i.latency = Duration::from_secs(3600);
        assert!(matches!(plan(&i), Err(PoolError::TooLarge { .. })));
        let msg = plan(&i).unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "1e308 req/s × 3600000 ms is over 1.8e308 requests in flight: no process"
            ),
            "{msg}"
        );
        // Finite but past u64 after rounding, and just past the kernel's cap.
        assert!(plan(&input(1e19, 1000, 1, 10)).is_err());
        assert!(plan(&input(MAX_PROCESS_FDS as f64 + 1.0, 1000, 1, 10)).is_err());
        // The largest pool that still fits a process is a plan (that does not fit 10 fds).
        let p = plan_ok(&input(1_717_986_867.0, 1000, 1, 10));
        assert_eq!(p.pool_max, 2_147_483_584);
        assert!(!p.fits);
        // Upstreams × pool past the cap (or past u64): refused, not wrapped.
        assert_eq!(
            plan(&input(2000.0, 50, u64::MAX, 10)),
            Err(PoolError::TooManyUpstreams {
                upstreams: u64::MAX,
                pool_max: 125
            })
        );
        assert!(plan(&input(2000.0, 50, 17_179_870, 10)).is_err());
    }

    #[test]
    fn rounding_and_the_fd_ceiling() {
        // 1,001 in flight → 1,252 (1,251.25 rounded up).
        let p = plan_ok(&input(1001.0, 1000, 1, 1024));
        assert_eq!(p.pool_max, 1252);
        assert!(!p.fits);
        // Tiny load still gets a connection.
        assert_eq!(plan_ok(&input(0.1, 1, 1, 10)).pool_max, 2);
        // Short upstream timeouts: half, not negative.
        let mut i = input(10.0, 10, 1, 10);
        i.upstream_idle_timeout = Duration::from_secs(4);
        assert_eq!(plan_ok(&i).keepalive_idle_s, 2.0);
    }
}
