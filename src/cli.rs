//! Every subcommand and flag. The doc comments are the `--help` text and the man pages, so they
//! are written for the engineer reading them at 3 a.m.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::netns::NetnsSpec;
use crate::sockets::filter::{Cidr, StateSel};

/// Socket, file-descriptor and handshake triage for Linux.
///
/// sockscope reads the kernel's socket tables over netlink (sock_diag), file descriptors from
/// /proc, and packets through libpcap, then says what the evidence means. Every subcommand
/// takes --json for scripts and --netns to look inside another network namespace.
///
/// Exit codes: 0 ok, 1 a problem was found, 2 bad usage or input, 3 environment error
/// (missing privilege, no such namespace), 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every TCP and UDP socket (IPv4 and IPv6), straight from the kernel.
    ///
    /// Like `ss -tuan`, with owners (-p) and tcp_info (-i) on demand. The state filter is
    /// applied by the kernel; address and port filters in sockscope.
    ///
    /// Examples:
    ///   sockscope sockets --state time-wait --dport 443
    ///   sockscope sockets -p --port 5432
    ///   sockscope sockets -i --state established --dst 10.0.0.0/8 --json
    Sockets(SocketsArgs),
    /// Listening TCP sockets and bound UDP sockets, with accept-queue fill and owners.
    ///
    /// The first stop for "connection refused" (is anything listening, on which address?) and
    /// for backlog trouble (an accept queue at or above its backlog drops new connections).
    /// With --port, exits 1 when nothing listens on that port.
    ///
    /// Examples:
    ///   sockscope listeners
    ///   sockscope listeners --port 8080
    Listeners(ListenersArgs),
    /// Socket counts per TCP state, the peers behind them, and ephemeral port use.
    ///
    /// Answers "how many TIME_WAIT, towards whom, and how close is the busiest remote service
    /// to exhausting net.ipv4.ip_local_port_range". Streams the table: memory stays small
    /// whatever the socket count.
    ///
    /// Examples:
    ///   sockscope states
    ///   sockscope states --top 3 --netns pid:4242
    States(StatesArgs),
    /// Capture TCP handshakes and explain them: established, refused, unanswered, reset, closed.
    ///
    /// Records only what a handshake diagnosis needs (SYN, SYN-ACK, RST, FIN and payload-free
    /// ACKs, chosen by a kernel BPF filter, so a busy link costs little) and prints one line
    /// per event as it happens:
    ///
    ///   12:00:01.000123  10.0.0.5:51234 → 10.0.0.9:443  SYN      (attempt 1)
    ///   12:00:01.000301  10.0.0.9:443 → 10.0.0.5:51234  RST      → refused
    ///
    /// On stop (-c, --duration or Ctrl-C, which ends a capture normally: exit 0) it prints
    /// each flow's outcome and a table per destination: attempts, established, refused (SYN
    /// answered by RST: nothing listens, or a firewall rejects), unanswered (SYN retransmitted
    /// with no reply: a firewall drops, or the host is gone), reset (RST after the handshake,
    /// and by whom), closed (FIN), open, and handshake RTT min/median/p99; then libpcap's
    /// received and dropped counts. -r reads any pcap file (tcpdump's too) and analyses it the
    /// same way. Needs CAP_NET_RAW for live captures.
    ///
    /// Examples:
    ///   sockscope capture --port 443 --duration 30s
    ///   sockscope capture -i eth0 --host 10.0.0.9 -w handshakes.pcap
    ///   sockscope capture --netns pid:4242 -i any -c 1000 --json
    ///   sockscope capture -r handshakes.pcap --port 443
    ///   tcpdump -i eth0 -w same.pcap "$(sockscope capture --print-filter --port 443)"
    // Verbatim: the sample lines and examples must keep their line breaks.
    #[command(verbatim_doc_comment)]
    Capture(CaptureArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    ///
    /// Example: sockscope completions bash > /etc/bash_completion.d/sockscope
    Completions(CompletionsArgs),
    /// Write the man pages to a directory (used to build man/).
    #[command(hide = true)]
    GenerateMan {
        /// Directory to write sockscope.1 and one page per subcommand into.
        dir: std::path::PathBuf,
    },
}

/// Options every collecting subcommand shares.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// Print JSON instead of a table (the schema is documented in the README).
    #[arg(long)]
    pub json: bool,
    /// Look inside another network namespace: a name from `ip netns list`, a path to a
    /// namespace file, or pid:PID for the namespace of a running process (a container).
    #[arg(long, value_name = "NAME|PATH|pid:PID")]
    pub netns: Option<NetnsSpec>,
}

/// Protocol and address family selection.
#[derive(Debug, Args, Clone, Default)]
pub struct FamilyArgs {
    /// TCP sockets only.
    #[arg(short = 't', long, conflicts_with = "udp")]
    pub tcp: bool,
    /// UDP sockets only.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Show the owning process(es): pid and name, from one scan of /proc/*/fd.
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// Show tcp_info for TCP sockets (rtt, rttvar, retransmits, cwnd, unacked, lost, last
    /// send/receive) and the socket's timer.
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Only sockets in this state; repeat for several. Names as in ss: established, syn-sent,
    /// syn-recv, fin-wait-1, fin-wait-2, time-wait, close, close-wait, last-ack, listening,
    /// closing; groups: connected, synchronized, all.
    #[arg(long, value_name = "STATE")]
    pub state: Vec<StateSel>,
    /// Only sockets with this port at either end.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Only sockets with this local (source) port.
    #[arg(long, value_name = "N")]
    pub sport: Option<u16>,
    /// Only sockets with this peer (destination) port.
    #[arg(long, value_name = "N")]
    pub dport: Option<u16>,
    /// Only sockets whose local address is in ADDR[/PREFIX].
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    pub src: Option<Cidr>,
    /// Only sockets whose peer address is in ADDR[/PREFIX].
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    pub dst: Option<Cidr>,
}

#[derive(Debug, Args)]
pub struct ListenersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Only this port; exit 1 if nothing listens on it.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct StatesArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How many peers to list in each ranking.
    #[arg(long, value_name = "N", default_value_t = 10, allow_negative_numbers = true, value_parser = parse_count)]
    pub top: usize,
}

/// A count of 1 or more (`--top`), with an error that says so for 0, -1 or "ten".
pub fn parse_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a count: give a whole number of 1 or more"
        )),
    }
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Device to capture on: `any` (all devices, the default), `lo`, `eth0`… An unknown name
    /// lists the devices that exist (inside --netns if given).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "DEV",
        default_value = "any"
    )]
    pub interface: String,
    /// Only connections with this port at either end.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Only connections with this address at either end (IPv4 or IPv6).
    #[arg(long, value_name = "ADDR")]
    pub host: Option<std::net::IpAddr>,
    /// Also write the captured packets to a pcap file (tcpdump and Wireshark read it).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,
    /// Analyse a pcap file instead of capturing (any writer, any of the link types EN10MB,
    /// LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL, LOOP).
    #[arg(short = 'r', long = "read", value_name = "FILE",
          conflicts_with_all = ["write", "count", "duration", "netns", "interface"])]
    pub read: Option<std::path::PathBuf>,
    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "N", value_parser = parse_count)]
    pub count: Option<usize>,
    /// Stop after this long: 30s, 5m, 1h, 500ms (a bare number is seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Flows tracked at once; beyond it the oldest is evicted (and counted), so a SYN flood
    /// cannot exhaust memory. Also caps the flows kept for the list (the summary counts all).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = parse_count)]
    pub max_flows: usize,
    /// Print the BPF filter this capture would use (with --port/--host) and exit: hand it to
    /// `tcpdump -w` to record the same packets with another tool.
    #[arg(long)]
    pub print_filter: bool,
}

/// A duration such as `30s`, `5m`, `1h`, `250ms` or `10` (seconds), more than zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("'{s}' is not a duration: use e.g. 30s, 5m, 1h or 500ms");
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs < 1e9) {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["sockscope", "sockets", "--port", "70000"][..],
            &["sockscope", "sockets", "--state", "bogus"],
            &["sockscope", "sockets", "--src", "10.0.0.0/40"],
            &["sockscope", "sockets", "--tcp", "--udp"],
            &["sockscope", "states", "--top", "-1"],
            &["sockscope", "listeners", "--netns", "pid:x"],
            &["sockscope", "capture", "--duration", "soon"],
            &["sockscope", "capture", "--duration", "0s"],
            &["sockscope", "capture", "-c", "0"],
            &["sockscope", "capture", "--host", "example.com"],
            &["sockscope", "capture", "-r", "x.pcap", "-w", "y.pcap"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn durations_read_like_people_write_them() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 days").is_err());
    }
}
