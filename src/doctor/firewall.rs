//! The packet filter's rules, read so doctor can name the one behind a refused or unanswered
//! probe: `nft -j list ruleset` (parsed as JSON), and `iptables-save` / `ip6tables-save` for
//! rules nft does not show (legacy iptables). [`read_ruleset`] runs the tools in the calling
//! thread's network namespace (a child process inherits the thread's namespace); the parsers
//! and [`Ruleset::matching`] are pure.

use std::process::Command;

use serde::Serialize;
use serde_json::Value;

/// What a rule does to the packets it matches (only the verdicts that stop a connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Answers with a TCP RST or ICMP port unreachable: the client sees ECONNREFUSED.
    Reject,
    /// Silently drops: the client times out.
    Drop,
}

/// The destination ports a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ports {
    /// No port match: every port.
    Any,
    /// These inclusive ranges.
    Ranges(Vec<(u16, u16)>),
    /// A match sockscope does not read (a named set, a negation): never claimed to match.
    Unknown,
}

/// One rule that rejects or drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FwRule {
    /// Where it sits: `nft table inet t chain input handle 2`, `iptables table filter chain INPUT`.
    pub location: String,
    /// The rule as its tool would print it (nft's syntax rebuilt from the JSON; iptables-save's
    /// line as it is).
    pub text: String,
    /// The layer-4 protocol it is limited to, if any.
    pub proto: Option<String>,
    pub dports: Ports,
    pub verdict: Verdict,
}

/// The rejecting and dropping rules of every tool that could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    pub rules: Vec<FwRule>,
    /// The tools that answered (`nft`, `iptables-save`…); empty when none could be read.
    pub read: Vec<&'static str>,
}

impl Ruleset {
    /// The rules with this verdict that apply to TCP port `port`.
    pub fn matching(&self, port: u16, verdict: Verdict) -> Vec<&FwRule> {
        self.rules
            .iter()
            .filter(|r| r.verdict == verdict)
            .filter(|r| r.proto.as_deref().is_none_or(|p| p == "tcp"))
            .filter(|r| match &r.dports {
                Ports::Any => true,
                Ports::Ranges(v) => v.iter().any(|&(lo, hi)| (lo..=hi).contains(&port)),
                Ports::Unknown => false,
            })
            .collect()
    }
}

/// Reads the rules in the calling thread's namespace. A tool that is missing or fails (no
/// privilege, no JSON support) is skipped; none at all gives an empty `read`.
pub fn read_ruleset(ipv6: bool) -> Ruleset {
    let mut rs = Ruleset::default();
    if let Some(text) = output("nft", &["-j", "list", "ruleset"]) {
        if let Ok(rules) = parse_nft_json(&text) {
            rs.read.push("nft");
            rs.rules.extend(rules);
        }
    }
    let save = if ipv6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    if let Some(text) = output(save, &[]) {
        rs.read.push(save);
        let tool = save.trim_end_matches("-save");
        for r in parse_iptables_save(tool, &text) {
            // iptables-nft rules show in nft's ruleset too: keep one of each.
            if !rs
                .rules
                .iter()
                .any(|x| x.verdict == r.verdict && x.dports == r.dports)
            {
                rs.rules.push(r);
            }
        }
    }
    rs
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The rejecting and dropping rules of `nft -j list ruleset`.
pub fn parse_nft_json(text: &str) -> Result<Vec<FwRule>, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    let mut out = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let exprs = rule["expr"].as_array().cloned().unwrap_or_default();
        let mut verdict = None;
        let mut proto = None;
        let mut dports = Ports::Any;
        let mut words = Vec::new();
        for e in &exprs {
            if let Some(m) = e.get("match") {
                let (left, right, op) = (&m["left"], &m["right"], m["op"].as_str().unwrap_or("=="));
                let value = nft_value(right);
                let positive = op == "==" || op == "in";
                if let Some(p) = left.get("payload") {
                    let (pr, field) = (str_of(&p["protocol"]), str_of(&p["field"]));
                    if pr == "tcp" || pr == "udp" {
                        proto = Some(pr.to_string());
                    }
                    if field == "dport" {
                        dports = match (positive, ranges(right)) {
                            (true, Some(r)) => Ports::Ranges(r),
                            _ => Ports::Unknown,
                        };
                    }
                    words.push(format!("{pr} {field} {}{value}", op_word(op)));
                } else if let Some(meta) = left.get("meta") {
                    let key = str_of(&meta["key"]);
                    if key == "l4proto" && positive {
                        proto = right.as_str().map(str::to_string);
                    }
                    words.push(format!("meta {key} {}{value}", op_word(op)));
                } else {
                    words.push(format!("{left} {}{value}", op_word(op)));
                }
            } else if let Some(r) = e.get("reject") {
                verdict = Some(Verdict::Reject);
                words.push(match (r["type"].as_str(), r["expr"].as_str()) {
                    (Some("tcp reset"), _) => "reject with tcp reset".to_string(),
                    // nft's plain `reject` is icmpx port-unreachable.
                    (Some("icmpx"), Some("port-unreachable")) | (None, None) => {
                        "reject".to_string()
                    }
                    (Some(t), Some(x)) => format!("reject with {t} {x}"),
                    (Some(t), None) => format!("reject with {t}"),
                    (None, Some(x)) => format!("reject with {x}"),
                });
            } else if e.get("drop").is_some() {
                verdict = Some(Verdict::Drop);
                words.push("drop".to_string());
            } else if let Some(k) = e.as_object().and_then(|o| o.keys().next()) {
                words.push(k.clone());
            }
        }
        let Some(verdict) = verdict else {
            continue;
        };
        out.push(FwRule {
            location: format!(
                "nft table {} {} chain {} handle {}",
                str_of(&rule["family"]),
                str_of(&rule["table"]),
                str_of(&rule["chain"]),
                rule["handle"]
            ),
            text: words.join(" "),
            proto,
            dports,
            verdict,
        });
    }
    Ok(out)
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn op_word(op: &str) -> &'static str {
    match op {
        "!=" => "!= ",
        "<" => "< ",
        ">" => "> ",
        "<=" => "<= ",
        ">=" => ">= ",
        _ => "",
    }
}

/// A match's right-hand side as nft prints it: `9004`, `1000-2000`, `{ 80, 1000-2000 }`.
fn nft_value(v: &Value) -> String {
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return format!(
            "{}-{}",
            nft_value(r.first().unwrap_or(&Value::Null)),
            nft_value(r.get(1).unwrap_or(&Value::Null))
        );
    }
    if let Some(s) = v.get("set").and_then(Value::as_array) {
        let items: Vec<String> = s.iter().map(nft_value).collect();
        return format!("{{ {} }}", items.join(", "));
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Port ranges of a match's right-hand side; None for anything else (a named set…).
fn ranges(v: &Value) -> Option<Vec<(u16, u16)>> {
    let port = |v: &Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
    if let Some(p) = port(v) {
        return Some(vec![(p, p)]);
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return Some(vec![(port(r.first()?)?, port(r.get(1)?)?)]);
    }
    if let Some(s) = v.get("set").and_then(Value::as_array) {
        let mut out = Vec::new();
        for x in s {
            out.extend(ranges(x)?);
        }
        return Some(out);
    }
    None
}

/// The REJECT and DROP rules of `iptables-save` output (`tool` is iptables or ip6tables).
pub fn parse_iptables_save(tool: &str, text: &str) -> Vec<FwRule> {
    let mut table = "filter".to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        let Some(rest) = line.strip_prefix("-A ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        let verdict = match after("-j") {
            Some("REJECT") => Verdict::Reject,
            Some("DROP") => Verdict::Drop,
            _ => continue,
        };
        let negated = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .is_some_and(|i| i > 0 && words[i - 1] == "!")
        };
        let dports = match after("--dport").or_else(|| after("--dports")) {
            None => Ports::Any,
            Some(_) if negated("--dport") || negated("--dports") => Ports::Unknown,
            Some(list) => list
                .split(',')
                .map(|p| match p.split_once(':') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => p.parse().ok().map(|n| (n, n)),
                })
                .collect::<Option<Vec<_>>>()
                .map_or(Ports::Unknown, Ports::Ranges),
        };
        out.push(FwRule {
            location: format!(
                "{tool} table {table} chain {}",
                words.first().unwrap_or(&"?")
            ),
            text: line.to_string(),
            proto: after("-p").map(str::to_string),
            dports,
            verdict,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list ruleset` of nft 1.0.6 (Debian 12) after three `nft add rule` commands.
    const NFT: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "t", "handle": 1}}, {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9004}}, {"reject": {"type": "tcp reset"}}]}}, {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9005}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}}, {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, {"range": [1000, 2000]}]}}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 6, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@blocked"}}, {"drop": null}]}}]}"#;

    #[test]
    fn nft_rules_by_port_and_verdict() {
        let rules = parse_nft_json(NFT).unwrap();
        assert_eq!(rules.len(), 4);
        let rs = Ruleset {
            rules,
            read: vec!["nft"],
        };
        let r = rs.matching(9004, Verdict::Reject);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].location, "nft table inet t chain input handle 2");
        assert_eq!(r[0].text, "tcp dport 9004 reject with tcp reset");
        let r = rs.matching(9005, Verdict::Reject);
        assert_eq!(r[0].text, "tcp dport 9005 reject");
        assert!(rs.matching(9004, Verdict::Drop).is_empty());
        let r = rs.matching(1500, Verdict::Drop);
        assert_eq!(r.len(), 1, "the named set is never claimed");
        assert_eq!(r[0].text, "tcp dport { 80, 1000-2000 } drop");
        assert!(rs.matching(2001, Verdict::Drop).is_empty());
        assert!(parse_nft_json("not json").is_err());
    }

    #[test]
    fn iptables_save_rules() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n\
                    -A INPUT -p tcp -m tcp --dport 9006 -j REJECT --reject-with tcp-reset\n\
                    -A INPUT -p tcp -m multiport --dports 80,8000:8100 -j DROP\n\
                    -A INPUT -p tcp -m tcp ! --dport 22 -j DROP\n\
                    -A INPUT -j ACCEPT\nCOMMIT\n";
        let rs = Ruleset {
            rules: parse_iptables_save("iptables", text),
            read: vec!["iptables-save"],
        };
        assert_eq!(rs.rules.len(), 3);
        let r = rs.matching(9006, Verdict::Reject);
        assert_eq!(r[0].location, "iptables table filter chain INPUT");
        assert_eq!(
            r[0].text,
            "-A INPUT -p tcp -m tcp --dport 9006 -j REJECT --reject-with tcp-reset"
        );
        assert_eq!(rs.matching(8050, Verdict::Drop).len(), 1);
        assert!(
            rs.matching(23, Verdict::Drop).is_empty(),
            "negations unread"
        );
    }
}
