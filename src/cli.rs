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
/// (missing privilege, no such namespace), 130 interrupted before the report was complete
/// (Ctrl-C that ends a capture or a --watch with its summary is a normal end: 0).
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
    /// Like `ss -tuan`, with owners (-p) and tcp_info (-i) on demand. ss's flags mean what
    /// they mean in ss (-t -u -l -a -n -p -i -m -e -o -4 -6, in one cluster too: -tlnp), and
    /// ss's filter language follows them:
    ///
    ///   [state STATE | exclude STATE]... [sport|dport OP :PORT] [src|dst ADDR[/PREFIX][:PORT]]
    ///
    /// joined by and (&&, or side by side), or (||), not (!) and ( ); OP is = != < > <= >=
    /// (eq ne lt gt le ge). As in ss, and/or bind equally, left to right: use parentheses.
    /// Unlike ss, the default is every state (ss -a): -l shows listening sockets only.
    /// Every filter runs in the kernel (state mask and inet_diag bytecode), so a narrow filter
    /// stays fast on a busy host. --pid and --name show one program's sockets: only those
    /// processes' fds are read, and each in its own network namespace (a container's sockets
    /// too, without --netns).
    ///
    /// Examples:
    ///   sockscope sockets -tlnp
    ///   sockscope sockets -tn state established '( dport = :443 or sport = :443 )' dst 10.0.0.0/8
    ///   sockscope sockets --state time-wait --dport 443
    ///   sockscope sockets -p --port 5432
    ///   sockscope sockets --name nginx --state established
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
    /// --by process counts per owning process instead (pid, name, container), worst first.
    /// The kernel gives no owner to TIME_WAIT sockets, connections not yet accepted and
    /// orphans (closed by their process, still in FIN-WAIT, CLOSING or LAST-ACK): they are
    /// counted in a "(no owner: …)" row per namespace, never guessed, so no socket is left
    /// out of the rows. Sockets whose holder could not be read (another user's process without
    /// root, or one that exited during the run) get an "(owner unknown)" row.
    ///
    /// --watch redraws the counts every INTERVAL with the change since the previous sample
    /// and its rate (time-wait 1200 +120 +24/s), per row under --all-netns or --by process.
    ///
    /// Examples:
    ///   sockscope states
    ///   sockscope states --top 3 --netns pid:4242
    ///   sockscope states --by process
    ///   sockscope states --all-netns --by container
    ///   sockscope states --watch 2s --netns pid:4242
    States(StatesArgs),
    #[command(verbatim_doc_comment)]
    /// The socket totals on one screen: what `ss -s` shows, and the limit each runs into.
    ///
    /// Sockets in use per protocol and family (TCP, UDP, UDP-Lite, raw, IP fragments), ss's
    /// TCP line (total, estab, closed, orphaned, timewait, with ss's formulas), then TIME_WAIT
    /// against net.ipv4.tcp_max_tw_buckets, orphans against net.ipv4.tcp_max_orphans, TCP and
    /// UDP buffer memory (pages and bytes) against net.ipv4.tcp_mem / udp_mem, and the host's
    /// file handles against fs.file-max. It reads the kernel's counters (/proc/net/sockstat,
    /// sockstat6, snmp), so it costs the same on a host with ten sockets or a million. The
    /// kernel keeps orphans, allocated TCP sockets and buffer memory for the whole host: those
    /// are marked (host), and under --netns they are still the host's (as in ss -s).
    ///
    /// --states adds every socket per protocol, state and family, from one sock_diag dump
    /// (time grows with the socket count, like `ss -tuan`).
    ///
    /// Examples:
    ///   sockscope summary
    ///   sockscope summary --states --netns pid:4242
    ///   sockscope summary --json | jq .tcp.time_wait
    Summary(SummaryArgs),
    #[command(verbatim_doc_comment)]
    /// The kernel's TCP, UDP and IP counters, as they change now (nstat done right).
    ///
    /// Reads /proc/net/netstat, snmp and snmp6 (of the --netns namespace), waits --interval and
    /// shows what grew: the counters behind the common symptoms first (ListenOverflows,
    /// ListenDrops, OutRsts, AttemptFails, EstabResets, TCPAbortOn*, RetransSegs, TCPTimeouts,
    /// TCPSynRetrans, TCPBacklogDrop, TCPRcvQDrop, Udp/Udp6 RcvbufErrors and InErrors…), each
    /// with what it means and the `sockscope explain` id it points to, then the rest by name.
    /// Counters that did not move are hidden (-a shows them). --absolute shows the totals
    /// since the namespace was created (boot, for the host's) instead. Ctrl-C (or SIGTERM,
    /// SIGHUP) during the interval ends it early with what moved so far (exit 0). Names are
    /// nstat's (TcpExtListenOverflows); NAME arguments keep the counters whose name contains
    /// one of them (case does not matter). Gauges (CurrEstab, RtoMin…) are not counters and
    /// are left out.
    ///
    /// Examples:
    ///   sockscope counters
    ///   sockscope counters --interval 10s --netns pid:4242
    ///   sockscope counters --absolute -a ListenOverflows ListenDrops
    ///   sockscope counters --json | jq '.counters[] | select(.explain == "accept-queue")'
    Counters(CountersArgs),
    /// Find what is wrong with sockets and fds on this host, or one service, and how to fix it.
    ///
    /// Without a target it checks the whole host (or the --netns namespace): every listener's
    /// accept queue against its backlog (naming the process that holds a crowded one);
    /// ListenOverflows/ListenDrops, the reset/abort counters and UDP receive-buffer drops
    /// over --interval (so findings are about now, not since boot); TIME_WAIT and per-peer
    /// use of the ephemeral port range; CLOSE_WAIT pile-ups and who holds them; every
    /// process's fd count against its soft limit; and fs.file-nr against fs.file-max (whole
    /// host only). On the host it also looks cheaply at the node's other namespaces (accept
    /// queues from a listener dump each; TIME_WAIT when their socket totals allow a warning) and says when they have problems; --all-netns
    /// runs every check in every namespace and names the namespace, container and process
    /// of each finding.
    ///
    /// With HOST:PORT (or --port N for 127.0.0.1:N) it first asks the kernel whether anything
    /// listens there (local targets), then makes one bounded connect and classifies it:
    /// connected, refused (RST), timed out (no SYN-ACK), unreachable, or reset after the
    /// handshake; --capture adds the probe's packets. Probes go only where you point them.
    ///
    /// Each finding: severity, symptom id (refused, timed-out, reset, emfile, enfile,
    /// time-wait, close-wait, accept-queue, recv-q, udp-drops, unreachable, addr-in-use), the
    /// rule number that decided it, the evidence with its numbers, the likely cause and the
    /// fix. Exit 0 healthy, 1 a warning or worse, 2 bad input, 3 environment (privilege,
    /// namespace).
    ///
    /// Examples:
    ///   sockscope doctor
    ///   sockscope doctor --netns pid:4242 --json
    ///   sockscope doctor db.internal:5432 --timeout 2s
    ///   sockscope doctor --port 8080
    ///   sockscope doctor 10.0.0.9:443 --capture
    ///   sockscope doctor --all-netns --interval 0
    // Verbatim: clap would otherwise join the example lines into one paragraph.
    #[command(verbatim_doc_comment)]
    Doctor(DoctorArgs),
    /// Explain an error or symptom: what it means, the likely causes, the fix, how to confirm.
    ///
    /// Takes what you paste: an errno name with or without the E (ECONNREFUSED, CONNREFUSED),
    /// its number (111), or its message ("Connection reset by peer"), for ECONNREFUSED,
    /// ETIMEDOUT, ECONNRESET, EPIPE, EMFILE, ENFILE, EADDRINUSE, EADDRNOTAVAIL, EHOSTUNREACH
    /// and ENETUNREACH (numbers and messages as this system's C library has them); doctor's
    /// symptom ids (refused, timed-out, reset, emfile, enfile, time-wait, close-wait,
    /// accept-queue, recv-q, udp-drops, unreachable, addr-in-use); and common phrasings.
    /// Case does not matter. An unknown name lists the closest known ones (exit 2).
    ///
    /// Examples:
    ///   sockscope explain ECONNREFUSED
    ///   sockscope explain 111
    ///   sockscope explain "Connection reset by peer"
    ///   sockscope explain time-wait
    ///   sockscope explain "too many open files" --json
    // Verbatim: clap would otherwise join the example lines into one paragraph.
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),
    /// Size a connection pool by Little's law and check it fits the fd limit.
    ///
    /// pool_max = ceil(qps × latency) × 1.25 (25% headroom); K upstreams × pool_max
    /// connections must fit the fd limit (--fd-limit, or this shell's soft RLIMIT_NOFILE); the
    /// keep-alive idle timeout should sit 5 s below the upstream's idle timeout. With --rtt it
    /// also prices a fresh connection (TCP + TLS 1.3 = 2 round trips). Exit 1 when the pools
    /// do not fit the fd limit; exit 2 when the numbers make no pool at all (more connections
    /// than a process can ever hold open).
    ///
    /// Examples:
    ///   sockscope pool --qps 2000 --latency 50ms
    ///   sockscope pool --qps 2000 --latency 50ms --upstreams 3 --fd-limit 65536 --rtt 50ms
    // Verbatim: clap would otherwise join the example lines into one paragraph.
    #[command(verbatim_doc_comment)]
    Pool(PoolArgs),
    /// Capture TCP handshakes and explain them: established, refused, unanswered, reset, closed.
    ///
    /// Records only what a handshake diagnosis needs (SYN, SYN-ACK, RST, FIN and payload-free
    /// ACKs, chosen by a kernel BPF filter, so a busy link costs little) and prints one line
    /// per event as it happens:
    ///
    ///   12:00:01.000123  10.0.0.5:51234 → 10.0.0.9:443  SYN      (attempt 1)
    ///   12:00:01.000301  10.0.0.9:443 → 10.0.0.5:51234  RST      → refused
    ///
    /// On stop (-c, --duration, or Ctrl-C, SIGTERM or SIGHUP, which end a capture normally:
    /// exit 0) it prints each flow's outcome, connect time (first SYN → SYN-ACK) and RTT
    /// (last SYN → SYN-ACK), and a table per destination: attempts, established, refused
    /// (SYN answered by RST: nothing listens, or a firewall rejects), unanswered (no reply although the client
    /// retransmitted, or 1 s passed: a firewall drops, or the host is gone), pending (one SYN
    /// younger than the initial RTO of 1 s when the capture ended: evidence of nothing),
    /// reset (RST after the server answered, and by whom), aborted (the client reset its own
    /// attempt), closed (FIN), open, and handshake RTT min/median/p99; what the problems of
    /// each destination mean, each from a numbered rule (V1 refused, V2 timed-out, V3 reset);
    /// then the kernel's received and dropped counts. -w writes those packets at 256 bytes each
    /// (--full: every TCP packet of the matched connections, whole). -r reads any pcap or
    /// pcapng file (tcpdump's too) and analyses it the same way, the capture ending at its
    /// last packet; a damaged file is analysed up to the damage, marked partial, and exits 2.
    /// A live capture names the local process (and container) at each end of a flow that is
    /// a socket on this host, matched by its four-tuple against the namespace's listeners at
    /// the start and its sockets at the end (an end gone or in TIME_WAIT by then stays
    /// unnamed); -r names nothing. Needs CAP_NET_RAW for live captures.
    ///
    /// Examples:
    ///   sockscope capture --port 443 --duration 30s
    ///   sockscope capture -i eth0 --host 10.0.0.9 -w handshakes.pcap
    ///   sockscope capture --port 443 -w all.pcap --full -U
    ///   sockscope capture --netns pid:4242 -i any -c 1000 --json
    ///   sockscope capture -r handshakes.pcap --port 443
    ///   tcpdump -i eth0 -w same.pcap "$(sockscope capture --print-filter --port 443)"
    // Verbatim: the sample lines and examples must keep their line breaks.
    #[command(verbatim_doc_comment)]
    Capture(CaptureArgs),
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
    /// its soft limit at that rate. With --kinds it also says which kinds grew (tcp +40:
    /// a socket leak; file +40: a file leak). Ctrl-C (or SIGTERM, SIGHUP) stops it and prints a
    /// summary of what grew (exit 0, "interrupted": true in JSON); --count N stops after N
    /// samples (exit 0). With --json, --watch prints
    /// JSON Lines: one object per sample, then a summary object.
    ///
    /// Other users' processes need root (or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) for their
    /// sockets and kinds; what cannot be read is marked, never fatal. A --pid that does not
    /// exist is an input error (exit 2).
    ///
    /// Examples:
    ///   sockscope fds
    ///   sockscope fds --name nginx --kinds
    ///   sockscope fds --pid 4242 --watch --interval 500ms --kinds
    ///   sockscope fds --all --json | jq '.processes[] | select(.percent_used > 80)'
    ///   sockscope fds --netns pid:4242 --kinds
    // Verbatim: clap would otherwise join the example lines into one paragraph.
    #[command(verbatim_doc_comment)]
    Fds(FdsArgs),
    /// Serve sockscope's signals to Prometheus: an HTTP /metrics endpoint, or a file for
    /// node_exporter's textfile collector.
    ///
    /// What only sockscope computes: sockets per protocol and state, each listener's accept
    /// queue against its backlog (with its process), the kernel's overflow, reset and UDP drop
    /// counters, TIME_WAIT and ephemeral-port use toward the busiest remote services against
    /// the range, the processes closest to their fd limit, fs.file-nr against fs.file-max, and
    /// doctor's current findings. Every scrape collects afresh (no background loop); scrapes
    /// that arrive together share one collection. Socket owners are cached between scrapes
    /// and re-read only for processes whose fd count changed. Metric names, labels and
    /// cardinality: see the README; alert rules: contrib/prometheus/sockscope-rules.yml.
    ///
    /// --listen serves GET /metrics (Prometheus text, or OpenMetrics when the scraper asks)
    /// and a small / page; it prints the bound address on stderr (port 0 picks a free one).
    /// --textfile writes DIR/sockscope.prom atomically every --interval, or once with --once
    /// (for cron). SIGINT or SIGTERM stops it cleanly (exit 0). Reading other users' fds needs
    /// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH; what cannot be read is counted in
    /// sockscope_unreadable_processes, never fatal.
    ///
    /// Examples:
    ///   sockscope exporter --listen 127.0.0.1:10915
    ///   sockscope exporter --textfile /var/lib/prometheus/node-exporter --once
    ///   sockscope exporter --listen 127.0.0.1:0 --netns pid:4242 --top 20
    #[command(verbatim_doc_comment)]
    Exporter(ExporterArgs),
    /// Record everything the collectors read on this host into one file, to replay elsewhere.
    ///
    /// The socket tables (raw sock_diag answers, every state, with tcp_info and memory), the
    /// /proc and /sys files, fd links and limits that sockets, listeners, states, fds and
    /// doctor read, and doctor's counters at both ends of its --interval: one zstd-compressed
    /// tar, versioned. Replay it anywhere with --from FILE on sockets, listeners, states, fds
    /// and doctor (`sockscope doctor --from host.tar.zst`): the same collectors, the same
    /// answers, the same findings.
    ///
    /// A snapshot holds what those commands see: socket addresses, process names and command
    /// counts of this host. Needs what the commands need (root for other users' fds).
    ///
    /// Examples:
    ///   sockscope snapshot host.tar.zst
    ///   sockscope snapshot --netns pid:4242 --interval 5s web.tar.zst
    #[command(verbatim_doc_comment)]
    Snapshot(SnapshotArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    ///
    /// Example: sockscope completions bash > /etc/bash_completion.d/sockscope
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
    /// Print completion candidates computed at completion time (called by the scripts that
    /// `completions` prints): `netns` lists the `ip netns` names.
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(value_name = "WHAT")]
        what: crate::completions::Dynamic,
    },
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
    /// Print JSON Lines: one compact JSON object per line (per sample, flow or event where
    /// the output streams; otherwise the whole report on one line).
    #[arg(long, conflicts_with = "json")]
    pub jsonl: bool,
    /// Colour in tables (severity): auto is on for a terminal unless NO_COLOR is set.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: crate::report::ColorChoice,
    /// Look inside another network namespace: a name from `ip netns list`, a path to a
    /// namespace file, or pid:PID for the namespace of a running process (a container).
    #[arg(long, value_name = "NAME|PATH|pid:PID")]
    pub netns: Option<NetnsSpec>,
    /// Read a snapshot recorded by `sockscope snapshot` instead of this host (no probes, no
    /// --netns, no --watch; --all-netns when it was recorded with `snapshot --all-netns`).
    #[arg(long, value_name = "FILE", conflicts_with = "netns")]
    pub from: Option<std::path::PathBuf>,
}

/// `sockscope snapshot`.
#[derive(Debug, Args, Clone)]
pub struct SnapshotArgs {
    /// The file to write (a zstd-compressed tar; written whole or not at all).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Record the view from another network namespace: a name from `ip netns list`, a path
    /// to a namespace file, or pid:PID.
    #[arg(long, value_name = "NAME|PATH|pid:PID")]
    pub netns: Option<NetnsSpec>,
    /// doctor's time between its two readings of the kernel's counters.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::units::parse_duration)]
    pub interval: std::time::Duration,
    /// Also record the whole node: every network namespace and the container behind each, as
    /// `states --all-netns` and `doctor --all-netns` see them (replay with --all-netns).
    #[command(flatten)]
    pub node: NodeArgs,
    /// Also write each recorded command's JSON report into DIR (tests compare replays with
    /// them).
    #[arg(long, value_name = "DIR", hide = true)]
    pub reports: Option<std::path::PathBuf>,
}

impl CommonArgs {
    /// The output format and colour, resolved once against the environment.
    pub fn output(&self) -> crate::report::Output {
        crate::report::Output::resolve(self.json, self.jsonl, self.color)
    }
}

/// The output flags alone, for subcommands that look at no namespace (explain, pool): the
/// same spelling and meaning as in [`CommonArgs`].
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Print JSON instead of a table (the schema is documented in the README).
    #[arg(long)]
    pub json: bool,
    /// Print JSON Lines: the whole report as one compact JSON object on one line.
    #[arg(long, conflicts_with = "json")]
    pub jsonl: bool,
    /// Colour in tables (severity): auto is on for a terminal unless NO_COLOR is set.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: crate::report::ColorChoice,
}

impl OutputArgs {
    pub fn output(&self) -> crate::report::Output {
        crate::report::Output::resolve(self.json, self.jsonl, self.color)
    }
}

/// Protocol and address family selection.
#[derive(Debug, Args, Clone, Default)]
pub struct FamilyArgs {
    /// TCP sockets (only TCP, unless -u is given too, as in ss).
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// UDP sockets (only UDP, unless -t is given too).
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// IPv4 (only IPv4, unless -6 is given too).
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,
    /// IPv6 (only IPv6, unless -4 is given too).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Listening sockets only, as in ss: TCP in LISTEN and unconnected (bound) UDP sockets.
    #[arg(short = 'l', long, conflicts_with = "all")]
    pub listening: bool,
    /// Every state. This is already the default (ss's default is connected sockets only);
    /// accepted for ss habits.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Accepted for ss habits: sockscope never resolves names or ports.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// UNIX sockets instead (ss -x): stream, dgram and seqpacket, with their path (@name for
    /// an abstract one), state, queues, inode and peer's inode; with -p both ends' processes
    /// (`nginx(12) ⇄ php-fpm(40)`). Takes -l, -a, -n, -p, --state, --netns and --all-netns.
    #[arg(
        short = 'x',
        long,
        conflicts_with_all = [
            "tcp", "udp", "ipv4", "ipv6", "info", "memory", "options", "extended", "port",
            "sport", "dport", "src", "dst", "pids", "name", "filter"
        ]
    )]
    pub unix: bool,
    /// Show the owning process(es): pid and name, from one scan of /proc/*/fd.
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// Show tcp_info for TCP sockets (rtt, rttvar, retransmits, cwnd, unacked, lost, last
    /// send/receive) and the socket's timer.
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Show each socket's owner uid and inode (ss -e's uid and ino).
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// Show the timer the kernel has armed on each socket: retransmit, keepalive, time-wait
    /// or zero-window probe, and when it fires (ss -o's timer).
    #[arg(short = 'o', long)]
    pub options: bool,
    /// Show each socket's memory as the kernel accounts it (like `ss -m`): bytes received and
    /// waiting against the receive buffer, bytes sent against the send buffer, and packets
    /// dropped on the socket (UDP: datagrams that found the receive buffer full).
    #[arg(short = 'm', long)]
    pub memory: bool,
    /// Only sockets in this state; repeat for several. Names as in ss: established, syn-sent,
    /// syn-recv, fin-wait-1, fin-wait-2, time-wait, close, close-wait, last-ack, listening,
    /// closing, unconn (UDP; listening on UDP means unconnected, as in ss -lu); case and - or _
    /// do not matter (ss's ESTAB, LISTEN, UNCONN work too); groups: connected, synchronized,
    /// bucket, big, all. Overrides -l and -a.
    #[arg(long, value_name = "STATE", hide_possible_values = true,
          value_parser = Completing::new(
              clap::builder::TypedValueParser::try_map(clap::builder::StringValueParser::new(), |s| s.parse::<StateSel>()),
              crate::completions::state_names,
          ))]
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
    /// Only sockets held by this process; repeat for several. Implies -p. Without --netns,
    /// read in the process's own network namespace.
    #[arg(long = "pid", value_name = "PID", value_parser = parse_pid, conflicts_with = "all_netns")]
    pub pids: Vec<u32>,
    /// Only sockets held by processes whose name (/proc/PID/comm) contains SUBSTR. Implies -p.
    #[arg(long, value_name = "SUBSTR", conflicts_with = "all_netns")]
    pub name: Option<String>,
    /// Kill the matching sockets (ss -K) through the kernel's SOCK_DESTROY: each connection is
    /// aborted (its owner sees ECONNABORTED, the peer a reset). Needs a filter (without one it
    /// would kill everything), CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY. On a
    /// terminal it lists the sockets and asks first; elsewhere it needs --yes. Reports what it
    /// killed and, per socket, what the kernel refused (exit 1 if any).
    #[arg(
        short = 'K',
        long = "kill",
        conflicts_with_all = ["unix", "all_netns", "pids", "name"]
    )]
    pub kill: bool,
    /// With -K: kill without asking, and list the sockets killed.
    #[arg(long, requires = "kill")]
    pub yes: bool,
    /// Read the sockets again every INTERVAL (default 1s; 500ms, 2s…) until Ctrl-C (exit 0).
    /// On a terminal: the table redrawn, new rows marked +, closed ones shown once marked -;
    /// into a pipe: the rows as they appear (+) and go (-). With --jsonl or --json: one line
    /// per change, {"type":"new"|"gone", …the socket}, and a {"type":"tick", "t", "total",
    /// "new", "gone"} line after each reading (the first reading's sockets are all new). A
    /// row is one (protocol, local, peer, inode). Give the interval, or put the filter words
    /// before --watch: the word after it is taken as the interval.
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "1s",
        value_parser = crate::units::parse_positive_duration,
        conflicts_with_all = ["kill", "unix", "all_netns", "pids", "name"]
    )]
    pub watch: Option<std::time::Duration>,
    /// With --watch: each TCP connection's throughput between two readings (bytes/s sent
    /// and acknowledged, and received, from tcp_info's bytes_acked and bytes_received; no
    /// packet capture), shown from a connection's second reading. With -p, per-process sums
    /// under the table. As JSON: a {"type":"rate", …the socket, "rate":{"sent","received"}}
    /// line per connection and a {"type":"process", "pid", "name", "connections", "sent",
    /// "received"} line per process, every reading.
    #[arg(long, requires = "watch")]
    pub rate: bool,
    /// Order the rows by queue (receive queue, largest first), state, port (local) or owner
    /// (pid; implies -p). Without it the kernel's order is kept and rows stream as they are
    /// dumped; with it every row is held in memory until the dump ends, to be sorted.
    #[arg(long, value_name = "KEY", conflicts_with_all = ["all_netns", "watch", "kill", "unix"])]
    pub sort: Option<SortKey>,
    /// ss's filter: `state established '( dport = :443 or sport = :443 )' dst 10.0.0.0/8`.
    /// State clauses come first and override -l/-a; the expression is ANDed with the other
    /// filters and runs in the kernel.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListenersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Accepted for ss habits (listeners are the listening sockets).
    #[arg(short = 'l', long)]
    pub listening: bool,
    /// Accepted for ss habits: sockscope never resolves names or ports.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Accepted for ss habits: owners are always shown.
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// Only this port; exit 1 if nothing listens on it.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// With --port: wait up to DURATION (30s, 500ms…) for something to listen on it, asking
    /// the kernel every 50 ms; exit 0 as soon as it does, 1 if it never did (a service's
    /// readiness check in a script).
    #[arg(
        long,
        value_name = "DURATION",
        requires = "port",
        conflicts_with = "all_netns",
        value_parser = crate::units::parse_positive_duration
    )]
    pub wait: Option<std::time::Duration>,
    /// Read the listeners again every INTERVAL (default 1s) until Ctrl-C (exit 0): on a
    /// terminal the table redrawn, new listeners marked +, closed ones shown once marked -;
    /// into a pipe the changes only; with --jsonl or --json one line per change
    /// ({"type":"new"|"gone", …the listener}) and a {"type":"tick", "t", "total", "new",
    /// "gone"} line after each reading.
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "1s",
        value_parser = crate::units::parse_positive_duration,
        conflicts_with_all = ["wait", "all_netns"]
    )]
    pub watch: Option<std::time::Duration>,
    /// Order the listeners by queue (connections waiting for accept(), most first), port,
    /// owner (pid) or fill (accept queue against backlog, fullest first) instead of by port.
    #[arg(long, value_name = "KEY", conflicts_with = "watch")]
    pub sort: Option<SortKey>,
}

#[derive(Debug, Args)]
pub struct StatesArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// How many peers to list in each ranking.
    #[arg(long, value_name = "N", default_value_t = 10, allow_negative_numbers = true, value_parser = parse_count)]
    pub top: usize,
    /// With --all-netns: one row per network namespace (netns, the default) or per container (a
    /// Kubernetes pod's containers share one namespace), worst first. process: one row per
    /// owning process (found by reading every process's fds, as `sockets -p` does), in this
    /// namespace, the --netns one, or with --all-netns every namespace; a socket that
    /// several processes share counts in each of their rows (the footer says how many).
    /// Sockets no process holds (TIME_WAIT, not yet accepted, orphans) are one "(no owner)"
    /// row per namespace.
    #[arg(
        long,
        value_name = "netns|container|process",
        requires_ifs = [("netns", "all_netns"), ("container", "all_netns")]
    )]
    pub by: Option<GroupBy>,
    /// Count again every INTERVAL (default 1s; 500ms, 2s…) until Ctrl-C, SIGTERM or SIGHUP
    /// (exit 0 after the sample in progress). On a terminal: the screen redrawn, each state
    /// with its change since the previous sample and the rate per second. Otherwise (a pipe,
    /// --json or --jsonl): one JSON line per sample, {"type":"sample", "t_us",
    /// "interval_us", "total", "states", "delta", "rate", "places"}: delta and rate (per
    /// second) are null on the first sample; places holds the rows of --all-netns or --by
    /// process.
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "1s",
        value_parser = crate::units::parse_positive_duration
    )]
    pub watch: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also count every TCP and UDP socket per state and family (one sock_diag dump).
    #[arg(long)]
    pub states: bool,
}

#[derive(Debug, Args)]
pub struct CountersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How long to watch the counters: 1s, 500ms, 1m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::units::parse_positive_duration)]
    pub interval: std::time::Duration,
    /// Show the totals since the namespace was created (the host's: since boot) instead of
    /// what moved during --interval.
    #[arg(long, conflicts_with = "interval")]
    pub absolute: bool,
    /// Show counters that are zero (did not move) too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only counters whose nstat name contains one of these (ListenOverflows, Udp6, Tcp…).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// The node view: every network namespace at once.
#[derive(Debug, Args, Clone, Default)]
pub struct NodeArgs {
    /// Look into every network namespace on the host at once (each process's, `ip netns`
    /// names, Docker's /run/docker/netns, bind mounts), naming the namespace and the
    /// container behind each row.
    #[arg(long, conflicts_with = "netns")]
    pub all_netns: bool,
    /// Read /run and the container runtimes' metadata under DIR instead of / (tests).
    #[arg(long, value_name = "DIR", hide = true)]
    pub fs_root: Option<std::path::PathBuf>,
}

impl NodeArgs {
    pub fn scope(&self, netns: Option<&NetnsSpec>) -> crate::scope::Scope {
        crate::scope::Scope::new(netns, self.all_netns)
    }
}

/// How node-wide rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum GroupBy {
    #[default]
    Netns,
    Container,
    Process,
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
    /// anon_inode, device, other. With --watch, also how much each kind grew.
    #[arg(long)]
    pub kinds: bool,
    /// Sample repeatedly: growth rate in fds/s and time until the soft limit. Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Time between samples with --watch: 500ms, 2s, 1.5s, 1m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::units::parse_positive_duration)]
    pub interval: std::time::Duration,
    /// With --watch, stop after N samples instead of waiting for Ctrl-C.
    #[arg(long, value_name = "N", value_parser = parse_count, requires = "watch")]
    pub count: Option<usize>,
    /// fds are per process, not per namespace: with --all-netns each row also names its
    /// process's network namespace and container.
    #[command(flatten)]
    pub node: NodeArgs,
    /// One row per container: its processes' fds summed, the process closest to its limit
    /// and how many processes, worst first (processes outside containers make one row).
    #[arg(long, value_name = "container", conflicts_with = "watch")]
    pub by: Option<FdsGroup>,
    /// Read processes from this directory instead of /proc (fake trees in tests).
    #[arg(long, value_name = "DIR", default_value = crate::host::PROC, hide = true)]
    pub proc_root: String,
}

/// How `fds` rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FdsGroup {
    Container,
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
#[command(group = clap::ArgGroup::new("probe_target").args(["target", "port"]))]
pub struct DoctorArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Probe this service (HOST:PORT, [IPv6]:PORT) instead of checking the whole host.
    #[arg(value_name = "HOST:PORT", conflicts_with_all = ["port", "all_netns"])]
    pub target: Option<crate::doctor::target::Target>,
    /// Probe a local service: 127.0.0.1:N, after checking that something listens on N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "all_netns")]
    pub port: Option<u16>,
    /// How long the probe waits for the handshake (e.g. 3s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::units::parse_positive_duration)]
    pub timeout: std::time::Duration,
    /// Record the probe's packets (libpcap, needs CAP_NET_RAW) and show them, so "timed out"
    /// comes with "SYN sent 3 times, no reply". Captures on lo for loopback targets, on all
    /// devices otherwise, filtered to the target's address and port.
    #[arg(long, requires = "probe_target")]
    pub capture: bool,
    /// Time between the two reads of the kernel's counters in a whole-host check (0 reads
    /// them back to back).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::units::parse_duration)]
    pub interval: std::time::Duration,
}

/// `sockscope exporter`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("sink").args(["listen", "textfile"]).required(true))]
pub struct ExporterArgs {
    /// Serve HTTP on this address (binds loopback unless told otherwise: 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Write DIR/sockscope.prom for node_exporter's textfile collector instead of serving.
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<std::path::PathBuf>,
    /// Time between two writes with --textfile (e.g. 15s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "15s", requires = "textfile",
          value_parser = crate::units::parse_positive_duration)]
    pub interval: std::time::Duration,
    /// With --textfile: write once and exit (for cron).
    #[arg(long, requires = "textfile")]
    pub once: bool,
    /// How many remote services (TIME_WAIT and ephemeral ports) and processes (fds) get their
    /// own series: this bounds the metrics' cardinality.
    #[arg(long, value_name = "N", default_value_t = 10, allow_negative_numbers = true, value_parser = parse_count)]
    pub top: usize,
    /// Watch another network namespace: a name from `ip netns list`, a path to a namespace
    /// file, or pid:PID. The HTTP endpoint stays in the namespace sockscope started in.
    #[arg(long, value_name = "NAME|PATH|pid:PID")]
    pub netns: Option<NetnsSpec>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An errno name (ECONNREFUSED…), number (111) or message ("Connection refused"), a
    /// symptom id (time-wait…) or a phrase ("recv-q").
    #[arg(value_name = "NAME", hide_possible_values = true,
          value_parser = Completing::new(
              clap::builder::StringValueParser::new(),
              crate::completions::explain_names,
          ))]
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Peak requests per second to the upstream.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_rate)]
    pub qps: f64,
    /// Average upstream latency per call once connected (e.g. 50ms).
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = crate::units::parse_positive_duration)]
    pub latency: std::time::Duration,
    /// How many upstream services, each with its own pool.
    #[arg(long, value_name = "K", default_value_t = 1, allow_negative_numbers = true, value_parser = parse_count)]
    pub upstreams: usize,
    /// The per-process fd limit to fit (default: this shell's soft RLIMIT_NOFILE).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub fd_limit: Option<usize>,
    /// The upstream's (or load balancer's) idle timeout; keep-alive should be shorter.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::units::parse_positive_duration)]
    pub upstream_idle_timeout: std::time::Duration,
    /// Round-trip time to the upstream, to price a new connection (TCP + TLS 1.3).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_positive_duration)]
    pub rtt: Option<std::time::Duration>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A rate of more than zero (`--qps`), with an error that says so for 0, -5 or "lots".
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a rate: give a number of requests per second above 0"
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
    /// Also write the captured packets to a pcap file (tcpdump and Wireshark read it). Only
    /// the packets the analysis uses (SYN, SYN-ACK, RST, FIN, payload-free ACKs) and only
    /// their first 256 bytes (headers, no payload) are kept; --full keeps everything. Flushed
    /// at least once a second, and at every stop (Ctrl-C, SIGTERM, SIGHUP).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,
    /// With -w: write every TCP packet of the matched connections (--port/--host), whole
    /// (snap length 262144), data included, like `tcpdump -w`. The analysis is the same; a
    /// busy link costs more. With --print-filter: print that filter.
    #[arg(long)]
    pub full: bool,
    /// With -w: flush the file after every packet (as tcpdump -U), so it can be followed
    /// while written: `tail -c +1 -f FILE | tcpdump -r -`.
    #[arg(short = 'U', long = "packet-buffered", requires = "write")]
    pub packet_buffered: bool,
    /// Analyse a pcap file instead of capturing (any writer, any of the link types EN10MB,
    /// LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL, LOOP).
    #[arg(short = 'r', long = "read", value_name = "FILE",
          conflicts_with_all = ["write", "count", "duration", "netns", "interface", "full"])]
    pub read: Option<std::path::PathBuf>,
    /// Stop after this many packets (those the filter passes, counted as tcpdump -c does);
    /// the capture ends at the packet that reached the count.
    #[arg(short = 'c', long = "count", value_name = "N", value_parser = parse_count)]
    pub count: Option<usize>,
    /// Stop after this long: 30s, 5m, 1h, 500ms (a bare number is seconds).
    #[arg(long, value_name = "TIME", value_parser = crate::units::parse_positive_duration)]
    pub duration: Option<std::time::Duration>,
    /// Flows tracked at once; beyond it the oldest is evicted (and counted), so a SYN flood
    /// cannot exhaust memory. Also caps the flows kept for the list (the summary counts all).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = parse_count)]
    pub max_flows: usize,
    /// With --json: indent the document for people (it is compact otherwise: a capture of
    /// 100,000 flows is tens of megabytes).
    #[arg(long)]
    pub pretty: bool,
    /// Print the BPF filter this capture would use (with --port/--host/--full) and exit: hand it to
    /// `tcpdump -w` to record the same packets with another tool.
    #[arg(long)]
    pub print_filter: bool,
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

/// Parses like `inner`, and offers `names` to shell completion (kept out of --help with
/// `hide_possible_values`): a value the list lacks (an alias, a number) still parses.
#[derive(Clone)]
pub struct Completing<P> {
    inner: P,
    names: fn() -> Vec<&'static str>,
}

impl<P> Completing<P> {
    pub fn new(inner: P, names: fn() -> Vec<&'static str>) -> Self {
        Completing { inner, names }
    }
}

impl<P> clap::builder::TypedValueParser for Completing<P>
where
    P: clap::builder::TypedValueParser,
    P::Value: Send + Sync + Clone + 'static,
{
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        self.inner.parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            (self.names)()
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

/// Words that start an ss command line (`sockscope -tlnp`, `sockscope state established`):
/// given where a subcommand belongs, they mean `sockscope sockets …`.
pub fn looks_like_ss(first: &str) -> bool {
    if matches!(first, "-h" | "-V" | "--help" | "--version") {
        return false;
    }
    let cluster = first.len() > 1
        && first.starts_with('-')
        && !first.starts_with("--")
        && first[1..].chars().all(|c| c.is_ascii_alphanumeric());
    cluster
        || matches!(
            first,
            "--tcp"
                | "--udp"
                | "--listening"
                | "--all"
                | "--numeric"
                | "--processes"
                | "--info"
                | "--memory"
                | "--extended"
                | "--options"
                | "--ipv4"
                | "--ipv6"
                | "--unix"
                | "--raw"
                | "--summary"
        )
        || matches!(
            first,
            "state" | "exclude" | "excl" | "sport" | "dport" | "src" | "dst" | "(" | "not" | "!"
        )
}

/// The sockscope spelling for an ss flag that `subcommand` does not take, if there is one.
pub fn ss_flag_hint(flag: &str, subcommand: &str) -> Option<String> {
    const TAKES: &str = "sockets takes ss's -t -u -x -l -a -n -p -i -m -e -o -4 -6";
    let hint = match flag {
        "-x" | "--unix" => "UNIX sockets are listed by `sockscope sockets -x`".to_string(),
        "-w" | "--raw" => "listing raw sockets is not available yet: sockscope sockets lists \
                           TCP (-t) and UDP (-u)"
            .to_string(),
        "-s" | "--summary" => "for ss -s, type `sockscope summary`".to_string(),
        "-r" | "--resolve" => {
            "sockscope never resolves names: addresses and ports are always numeric".to_string()
        }
        "-H" | "--no-header" => "for scripts, use --json (a stable schema)".to_string(),
        "-N" | "--net" => "use --netns NAME (or a namespace path, or pid:PID)".to_string(),
        "-f" | "--family" => "use -4 or -6 (and -t or -u)".to_string(),
        "-A" | "--query" | "--socket" => "use -t (TCP) or -u (UDP)".to_string(),
        "-K" | "--kill" => "sockscope only reads: it never closes sockets".to_string(),
        "-E" | "--events" => "watching sockets close is not available; `sockscope capture` \
                              records handshakes, resets and closes"
            .to_string(),
        "-F" | "--filter" => "give the filter as words after the flags: \
                              `sockscope sockets state established dport = :443`"
            .to_string(),
        "-O" | "--oneline" => "each socket is already one line".to_string(),
        "-a" | "--all" if subcommand == "listeners" => {
            "listeners shows listening sockets only; for every state type `sockscope sockets -a`"
                .to_string()
        }
        "-i" | "--info" | "-m" | "--memory" | "-e" | "--extended" | "-o" | "--options"
            if subcommand == "listeners" =>
        {
            format!("listeners does not take {flag}; type `sockscope sockets -l {flag}`")
        }
        f if f.starts_with("--") => return None,
        _ if subcommand == "sockets" || subcommand.is_empty() => {
            format!("ss's {flag} has no sockscope equivalent; {TAKES}")
        }
        _ => return None,
    };
    Some(hint)
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
            &["sockscope", "sockets", "-l", "-a"],
            &["sockscope", "states", "--top", "-1"],
            &["sockscope", "listeners", "--netns", "pid:x"],
            &["sockscope", "doctor", "localhost"],
            &["sockscope", "doctor", "--timeout", "0s", "h:1"],
            &["sockscope", "pool", "--qps", "-5", "--latency", "50ms"],
            &["sockscope", "pool", "--qps", "10", "--latency", "-1s"],
            &["sockscope", "capture", "--duration", "soon"],
            &["sockscope", "capture", "--duration", "0s"],
            &["sockscope", "capture", "-c", "0"],
            &["sockscope", "capture", "--host", "example.com"],
            &["sockscope", "capture", "-r", "x.pcap", "-w", "y.pcap"],
            &["sockscope", "capture", "-U"],
            &["sockscope", "capture", "-r", "x.pcap", "--full"],
            &["sockscope", "fds", "--top", "-1"],
            &["sockscope", "fds", "--top", "0"],
            &["sockscope", "fds", "--pid", "0"],
            &["sockscope", "fds", "--pid", "abc"],
            &["sockscope", "fds", "--watch", "--interval", "0"],
            &["sockscope", "fds", "--watch", "--interval", "0ms"],
            &["sockscope", "fds", "--watch", "--interval", "-1s"],
            &["sockscope", "fds", "--watch", "--interval", "soon"],
            &["sockscope", "fds", "--top", "3", "--all"],
            &["sockscope", "fds", "--count", "3"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}

/// `--sort` of `sockets` and `listeners`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Receive queue, largest first (on a listener: connections waiting for accept()).
    Queue,
    /// TCP state (established, syn-sent, … as numbered by the kernel).
    State,
    /// Local port.
    Port,
    /// Owner's pid (unowned last); implies -p on sockets.
    Owner,
    /// Listeners only: accept queue against backlog, fullest first.
    Fill,
}
