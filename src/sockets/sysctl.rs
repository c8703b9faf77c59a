//! The TCP sysctls that explain TIME_WAIT and port exhaustion. `/proc/sys/net` answers for the
//! network namespace of the task that opens the file, so these are read after `--netns` is
//! entered, from the same thread.

use crate::host::Host;

/// Reads a sysctl such as `net/ipv4/tcp_tw_reuse`; `None` if absent or unreadable.
pub fn read_sysctl(host: &dyn Host, name: &str) -> Option<String> {
    let raw = host
        .read_file(&format!("{}/sys/{name}", crate::host::PROC))
        .ok()?;
    Some(String::from_utf8_lossy(&raw).trim().to_string())
}

pub fn read_sysctl_i64(host: &dyn Host, name: &str) -> Option<i64> {
    read_sysctl(host, name)?.parse().ok()
}

/// `net.ipv4.ip_local_port_range`: the ephemeral ports `connect()` picks from.
pub fn read_port_range(host: &dyn Host) -> Option<(u16, u16)> {
    parse_port_range(&read_sysctl(host, "net/ipv4/ip_local_port_range")?)
}

pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let mut it = s.split_whitespace().map(|p| p.parse::<u16>());
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// `tcp_tw_reuse` and `tcp_max_tw_buckets` as the calling thread's namespace has them.
pub fn read_time_wait_settings(host: &dyn Host) -> super::states::TimeWaitSettings {
    super::states::TimeWaitSettings {
        tcp_tw_reuse: read_sysctl_i64(host, "net/ipv4/tcp_tw_reuse"),
        tcp_max_tw_buckets: read_sysctl_i64(host, "net/ipv4/tcp_max_tw_buckets"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_the_proc_format() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 1024"), Some((1024, 1024)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
        assert_eq!(parse_port_range(""), None);
    }

    #[test]
    fn reads_the_live_range() {
        assert!(read_port_range(&crate::host::LiveHost).is_some());
    }
}
