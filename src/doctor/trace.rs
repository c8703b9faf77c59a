//! Reading the probe's own flow out of a capture report (`doctor --capture`): which flow is
//! ours (client = the probe's local address), and its numbers (`render::doctor` says it in
//! words). Pure.

use std::net::SocketAddr;

use super::model::PacketTrace;
use crate::capture::CaptureReport;

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |s: SocketAddr| match s.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(|v4| SocketAddr::new(v4.into(), s.port()))
            .unwrap_or(s),
        _ => s,
    };
    canon(a) == canon(b)
}

/// The trace of the flow from `local` to `target`; `not-seen` when the capture missed it.
pub fn trace_for(
    report: &CaptureReport,
    local: Option<SocketAddr>,
    target: SocketAddr,
) -> PacketTrace {
    // The probe's local port can be unknown: on loopback the RST may arrive, and release the
    // port, before getsockname runs. The capture is filtered to the target, so then the last
    // flow to it is the probe's.
    let to_target = || report.flows.iter().filter(|f| same(f.server, target));
    let flow = match local {
        Some(l) => to_target().find(|f| same(f.client, l)),
        None => to_target().max_by_key(|f| f.start_us),
    };
    let tcp_segments = report.stats.tcp_segments;
    let Some(f) = flow else {
        return PacketTrace {
            outcome: "not-seen".into(),
            syn_attempts: 0,
            syn_at_us: Vec::new(),
            handshake_rtt_us: None,
            reset_by: None,
            tcp_segments,
        };
    };
    let first = f.syn_times_us.first();
    PacketTrace {
        outcome: f.outcome.name().to_string(),
        syn_attempts: f.syn_attempts,
        syn_at_us: f
            .syn_times_us
            .iter()
            .map(|t| t.saturating_sub(first))
            .collect(),
        handshake_rtt_us: f.handshake_rtt_us,
        reset_by: f.reset_by.map(|s| s.name().to_string()),
        tcp_segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{CaptureStats, Flow, Outcome, Side};
    use crate::render::doctor::trace_summary;

    fn flow(
        client: &str,
        outcome: Outcome,
        syns: &[u64],
        rtt: Option<u64>,
        by: Option<Side>,
    ) -> Flow {
        Flow {
            client: client.parse().unwrap(),
            server: "127.0.0.1:8080".parse().unwrap(),
            outcome,
            syn_attempts: syns.len() as u32,
            syn_times_us: crate::capture::model::SynTimes::from_times(syns).unwrap(),
            start_us: syns[0],
            last_us: *syns.last().unwrap(),
            connect_us: None,
            synack_not_captured: false,
            challenge_acks: 0,
            handshake_rtt_us: rtt,
            ack_rtt_us: None,
            reset_by: by,
            closed_by: None,
            evicted: false,
        }
    }

    fn report(flows: Vec<Flow>) -> CaptureReport {
        CaptureReport::new(
            flows,
            Vec::new(),
            Vec::new(),
            CaptureStats {
                tcp_segments: 7,
                ..Default::default()
            },
        )
    }

    #[test]
    fn picks_the_probes_flow_and_describes_it() {
        let target = "127.0.0.1:8080".parse().unwrap();
        let r = report(vec![
            flow(
                "127.0.0.1:40000",
                Outcome::Established,
                &[1_000],
                Some(50),
                None,
            ),
            flow(
                "127.0.0.1:40001",
                Outcome::Unanswered,
                &[5_000_000, 6_000_000, 8_000_000],
                None,
                None,
            ),
        ]);
        let t = trace_for(&r, Some("127.0.0.1:40001".parse().unwrap()), target);
        assert_eq!(t.outcome, "unanswered");
        assert_eq!(t.syn_attempts, 3);
        assert_eq!(t.syn_at_us, vec![0, 1_000_000, 3_000_000]);
        assert_eq!(
            trace_summary(&t),
            "SYN sent 3 time(s) (at 0 s, 1 s, 3 s), no reply"
        );

        let r = report(vec![flow(
            "127.0.0.1:40002",
            Outcome::Refused,
            &[1],
            None,
            Some(Side::Server),
        )]);
        let t = trace_for(&r, Some("127.0.0.1:40002".parse().unwrap()), target);
        assert_eq!(
            trace_summary(&t),
            "SYN sent 1 time(s), answered by RST from the server"
        );

        // Unknown local port: the flow to the target.
        assert_eq!(trace_for(&r, None, target).outcome, "refused");
        let t = trace_for(&r, Some("127.0.0.1:1".parse().unwrap()), target);
        assert_eq!(t.outcome, "not-seen");
        assert_eq!(
            trace_summary(&t),
            "no packet of the probe was captured (7 TCP segments in all)"
        );
    }
}
