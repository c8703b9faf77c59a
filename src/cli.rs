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
    #[command(verbatim_doc_comment)]
    /// List every TCP and UDP socket (IPv4 and IPv6), straight from the kernel.
    ///
    /// Like `ss -tuan`, with owners (-p) and tcp_info (-i) on demand. Every filter runs in the
    /// kernel (state mask and inet_diag bytecode), so a narrow filter stays fast on a busy host.
    ///
    /// Examples:
    ///   sockscope sockets --state time-wait --dport 443
    ///   sockscope sockets -p --port 5432
    ///   sockscope sockets -i --state established --dst 10.0.0.0/8 --json
    Sockets(SocketsArgs),
    #[command(verbatim_doc_comment)]
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
    #[command(verbatim_doc_comment)]
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
    /// Who is running out of file descriptors, how fast, and what kind they are.
    ///
    /// One row per process: open fds, soft and hard RLIMIT_NOFILE, % of the soft limit used
    /// (EMFILE "Too many open files" comes at 100%) and how many fds are sockets; most-used
    /// first. A header shows the system-wide file table (ENFILE comes when allocated reaches
    /// max). Counts and limits cost one stat and one small read per process, so the view stays
    /// cheap on a busy host; the fds themselves are read only for the rows shown.
    ///
    /// --kinds splits each process's fds into TCP, UDP, UNIX and other sockets (matched
    /// exactly against the kernel's sock_diag tables, in every network namespace involved),
    /// files, pipes, anon inodes (eventfd, epoll, timerfd…), devices and other: a socket leak
    /// and a file leak look different at a glance.
    ///
    /// --watch samples again every --interval and shows each process's growth in fds/s (least
    /// squares over all samples) and, for a growing process, the time left until it reaches
    /// its soft limit at that rate. Ctrl-C stops it and prints a summary of what grew (exit
    /// 130); --count N stops after N samples (exit 0). With --json, --watch prints JSON Lines:
    /// one object per sample, then a summary object.
    ///
    /// Other users' processes need root (or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) for their
    /// sockets and kinds; what cannot be read is marked, never fatal. A --pid that does not
    /// exist is an input error (exit 2).
    ///
    /// Examples:
    ///   sockscope fds
    ///   sockscope fds --name nginx --kinds
    ///   sockscope fds --pid 4242 --watch --interval 500ms
    ///   sockscope fds --all --json | jq '.processes[] | select(.percent_used > 80)'
    ///   sockscope fds --netns pid:4242 --kinds
    // Verbatim: clap would otherwise join the example lines into one paragraph.
    #[command(verbatim_doc_comment)]
    Fds(FdsArgs),
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

#[derive(Debug, Args)]
pub struct FdsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Show the N processes closest to their limit [default: 20].
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count, conflicts_with = "all")]
    pub top: Option<usize>,
    /// Show every process. Counts and limits only (no socket column), which keeps it at one
    /// stat per process; add --kinds to read every process's fds too.
    #[arg(long)]
    pub all: bool,
    /// Only this process; repeat for several. With --netns, only processes in that network
    /// namespace.
    #[arg(long = "pid", value_name = "PID", value_parser = parse_pid)]
    pub pids: Vec<u32>,
    /// Only processes whose name (/proc/PID/comm) contains SUBSTR.
    #[arg(long, value_name = "SUBSTR")]
    pub name: Option<String>,
    /// Break each shown process's fds down by kind: tcp, udp, unix, other_socket, file, pipe,
    /// anon_inode, device, other.
    #[arg(long, conflicts_with = "watch")]
    pub kinds: bool,
    /// Sample repeatedly: growth rate in fds/s and time until the soft limit. Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Time between samples with --watch: 500ms, 2s, 1.5s, 1m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// With --watch, stop after N samples instead of waiting for Ctrl-C.
    #[arg(long, value_name = "N", value_parser = parse_count, requires = "watch")]
    pub count: Option<usize>,
    /// Read processes from this directory instead of /proc (fake trees in tests).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: String,
}

/// A process id: a whole number of 1 or more.
pub fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a process id: give a whole number of 1 or more"
        )),
    }
}

/// A duration of more than 0 and at most a day: `500ms`, `2s`, `1.5s`, `1m`, or bare seconds.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("'{s}' is not an interval: give a duration like 500ms, 2s or 1m, more than 0");
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = v * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!(
            "interval '{s}' must be more than 0 (e.g. 500ms or 1s)"
        ));
    }
    if secs > 86_400.0 {
        return Err(format!("interval '{s}' is longer than a day"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
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
            &["sockscope", "fds", "--top", "-1"],
            &["sockscope", "fds", "--top", "0"],
            &["sockscope", "fds", "--pid", "0"],
            &["sockscope", "fds", "--pid", "abc"],
            &["sockscope", "fds", "--watch", "--interval", "0"],
            &["sockscope", "fds", "--watch", "--interval", "0ms"],
            &["sockscope", "fds", "--watch", "--interval", "-1s"],
            &["sockscope", "fds", "--watch", "--interval", "soon"],
            &["sockscope", "fds", "--top", "3", "--all"],
            &["sockscope", "fds", "--kinds", "--watch"],
            &["sockscope", "fds", "--count", "3"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn intervals_parse_with_units() {
        use std::time::Duration;
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_interval("3"), Ok(Duration::from_secs(3)));
        assert!(parse_interval("0").unwrap_err().contains("more than 0"));
        assert!(parse_interval("2d").is_err());
        assert!(parse_interval("NaNs").is_err());
        assert!(parse_interval("90000s").is_err());
    }
}
