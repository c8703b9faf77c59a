//! What a destination's counts mean (pure): refused, unanswered and reset connections in the
//! words of the symptom table, each pointing at `sockscope explain` for the whole row.
//!
//! Every verdict comes from one numbered rule of [`RULES`] (README, "What it means"); the
//! verdict carries its rule's id.

use super::model::{DestSummary, Verdict};

/// The rules, in the order their verdicts are listed for a destination: (id, symptom, when).
pub const RULES: [(&str, &str, &str); 3] = [
    (
        "V1",
        "refused",
        "at least one attempt was refused (SYN answered by RST)",
    ),
    (
        "V2",
        "timed-out",
        "at least one attempt is unanswered (never `pending` ones)",
    ),
    (
        "V3",
        "reset",
        "at least one connection was reset after the server answered (not `aborted` ones)",
    ),
];

/// One verdict per problem of each destination, in destination order.
pub fn verdicts(summary: &[DestSummary]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for d in summary {
        let port = d.server.port();
        let mut say = |rule: usize, text: String| {
            let (rule, symptom, _) = RULES[rule];
            out.push(Verdict {
                rule,
                server: d.server,
                symptom,
                text: format!("{text}; sockscope explain {symptom}"),
            })
        };
        if d.refused > 0 {
            say(
                0,
                format!(
                    "{} of {} attempts refused: the SYN was answered by RST, so nothing listens \
                     on port {port} there (or a firewall rejects)",
                    d.refused, d.attempts
                ),
            );
        }
        if d.unanswered > 0 {
            say(
                1,
                format!(
                    "{} of {} attempts unanswered ({} SYN retransmissions in all): SYNs are \
                     dropped on the way (a firewall DROP, a security group, a route) or the \
                     host is down",
                    d.unanswered, d.attempts, d.syn_retransmits
                ),
            );
        }
        if d.reset > 0 {
            let by_client = d.reset - d.reset_by_server.min(d.reset);
            say(
                2,
                format!(
                    "{} of {} connections reset after the handshake ({} by the server, {} by \
                     the client): an abortive close (SO_LINGER 0, a crash, a proxy or firewall \
                     timing out the connection)",
                    d.reset, d.attempts, d.reset_by_server, by_client
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::table::row;

    fn dest(server: &str) -> DestSummary {
        DestSummary {
            server: server.parse().unwrap(),
            attempts: 10,
            established: 0,
            refused: 0,
            unanswered: 0,
            reset: 0,
            reset_by_server: 0,
            closed: 0,
            open: 0,
            pending: 0,
            aborted: 0,
            syn_retransmits: 0,
            rtt_min_us: None,
            rtt_median_us: None,
            rtt_p99_us: None,
        }
    }

    #[test]
    fn each_problem_is_named_with_its_numbers() {
        let healthy = DestSummary {
            closed: 10,
            ..dest("10.0.0.9:443")
        };
        let mixed = DestSummary {
            refused: 2,
            unanswered: 3,
            syn_retransmits: 6,
            reset: 4,
            reset_by_server: 3,
            closed: 1,
            ..dest("10.0.0.10:5432")
        };
        let v = verdicts(&[healthy, mixed]);
        let ids: Vec<&str> = v.iter().map(|x| x.symptom).collect();
        assert_eq!(ids, ["refused", "timed-out", "reset"]);
        let rules: Vec<&str> = v.iter().map(|x| x.rule).collect();
        assert_eq!(rules, ["V1", "V2", "V3"]);
        assert!(v.iter().all(|x| x.server.to_string() == "10.0.0.10:5432"));
        assert!(
            v[0].text.starts_with("2 of 10 attempts refused"),
            "{}",
            v[0].text
        );
        assert!(v[0].text.contains("nothing listens on port 5432"));
        assert!(v[1]
            .text
            .starts_with("3 of 10 attempts unanswered (6 SYN retransmissions"));
        assert!(v[2].text.starts_with(
            "4 of 10 connections reset after the handshake (3 by the server, 1 by the client)"
        ));
        for x in &v {
            assert!(x
                .text
                .ends_with(&format!("; sockscope explain {}", x.symptom)));
            // Every id is a row `explain` knows.
            assert_eq!(row(x.symptom).id, x.symptom);
        }
    }
}
