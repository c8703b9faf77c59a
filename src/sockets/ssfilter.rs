//! ss's filter language, as `sockets` takes it after its flags:
//!
//!   [state STATE | exclude STATE]... [EXPRESSION]
//!
//! EXPRESSION joins `sport OP PORT`, `dport OP PORT`, `src HOST`, `dst HOST` with `and`/`&&`,
//! `or`/`||`, `not`/`!` and parentheses; two conditions side by side mean `and`. As in ss (its
//! bison grammar), `and` and `or` bind equally and group from the left: `a or b and c` is
//! `(a or b) and c`. Words may come as separate shell words or inside one quoted word.
//! Parsing is pure; a mistake points at the word with `^` under it.

use std::fmt;
use std::net::IpAddr;

use super::all_states_mask;
use super::expr::{End, Expr};
use super::filter::{Cidr, StateSel};

/// A parsed filter: the state clauses (`None` when there were none) and the expression.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub states: Option<u32>,
    pub expr: Option<Expr>,
}

/// A filter the parser could not read: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// The filter words joined by spaces, as shown under the message.
    pub line: String,
    /// Character column and width of the offending word in `line`.
    pub col: usize,
    pub width: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter: {}\n  {}\n  {}{}",
            self.message,
            self.line,
            " ".repeat(self.col),
            "^".repeat(self.width.max(1))
        )
    }
}

impl std::error::Error for ParseError {}

const EXPECTED: &str = "expected sport, dport, src, dst, not or '('";

#[derive(Debug)]
struct Token {
    text: String,
    col: usize,
}

/// Splits the words on blanks and around parentheses (ss needs spaces there; a user who
/// writes `(dport = :443)` means the same thing).
fn lex(words: &[String]) -> (Vec<Token>, String) {
    let line = words.join(" ");
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (col, c) in line.chars().enumerate() {
        if c.is_whitespace() || c == '(' || c == ')' {
            if !cur.is_empty() {
                tokens.push(Token {
                    text: std::mem::take(&mut cur),
                    col: start,
                });
            }
            if !c.is_whitespace() {
                tokens.push(Token {
                    text: c.to_string(),
                    col,
                });
            }
        } else {
            if cur.is_empty() {
                start = col;
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(Token {
            text: cur,
            col: start,
        });
    }
    (tokens, line)
}

/// Parses the filter words of a `sockets` command line.
pub fn parse(words: &[String]) -> Result<Query, ParseError> {
    let (tokens, line) = lex(words);
    let mut p = Parser {
        tokens,
        line,
        pos: 0,
    };
    let mut states: Option<u32> = None;
    while let Some(kw) = p.peek().map(str::to_string) {
        let exclude = match kw.as_str() {
            "state" => false,
            "exclude" | "excl" => true,
            _ => break,
        };
        p.pos += 1;
        let Some(name) = p.peek() else {
            return Err(p.error_at_end(format!("'{kw}' needs a state name ({})", short_states())));
        };
        let sel: StateSel = name.parse().map_err(|e: String| p.error_here(e))?;
        p.pos += 1;
        // As in ss: the first `exclude` starts from every state, the first `state` from none.
        let base = states.unwrap_or(if exclude { all_states_mask() } else { 0 });
        states = Some(if exclude { base & !sel.0 } else { base | sel.0 });
    }
    if p.peek().is_none() {
        return Ok(Query { states, expr: None });
    }
    let expr = p.exprlist()?;
    if p.peek().is_some() {
        // exprlist stops only at the end or at a ')' it did not open.
        return Err(p.error_here("')' without a matching '('".into()));
    }
    Ok(Query {
        states,
        expr: Some(expr),
    })
}

fn short_states() -> &'static str {
    "e.g. established, time-wait, listening, connected"
}

struct Parser {
    tokens: Vec<Token>,
    line: String,
    pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

fn op_of(word: &str) -> Option<Op> {
    Some(match word {
        "=" | "==" | "eq" => Op::Eq,
        "!=" | "ne" | "neq" => Op::Ne,
        ">=" | "ge" | "geq" => Op::Ge,
        "<=" | "le" | "leq" => Op::Le,
        ">" | "gt" => Op::Gt,
        "<" | "lt" => Op::Lt,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(|t| t.text.as_str())
    }

    fn error_here(&self, message: String) -> ParseError {
        match self.tokens.get(self.pos) {
            Some(t) => ParseError {
                message,
                line: self.line.clone(),
                col: t.col,
                width: t.text.chars().count(),
            },
            None => self.error_at_end(message),
        }
    }

    fn error_at_end(&self, message: String) -> ParseError {
        let len = self.line.chars().count();
        ParseError {
            message,
            line: self.line.clone(),
            col: if len == 0 { 0 } else { len + 1 },
            width: 1,
        }
    }

    /// expr { [and | or] expr }, left to right, all of one precedence (as ss).
    fn exprlist(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.expr()?;
        loop {
            match self.peek() {
                None | Some(")") => return Ok(e),
                Some("and" | "&&" | "&") => {
                    self.pos += 1;
                    e = Expr::and(e, self.operand()?);
                }
                Some("or" | "||" | "|") => {
                    self.pos += 1;
                    e = Expr::or(e, self.operand()?);
                }
                Some(_) => e = Expr::and(e, self.expr()?),
            }
        }
    }

    /// The expression after `and`/`or`/`not`: the end there is a mistake of its own.
    fn operand(&mut self) -> Result<Expr, ParseError> {
        if self.peek().is_none() {
            let last = &self.tokens[self.pos - 1].text;
            return Err(
                self.error_at_end(format!("'{last}' needs a condition after it ({EXPECTED})"))
            );
        }
        self.expr()
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let Some(word) = self.peek().map(str::to_string) else {
            return Err(self.error_at_end(format!("the filter ends too early ({EXPECTED})")));
        };
        match word.as_str() {
            "(" => {
                let open = self.pos;
                self.pos += 1;
                if self.peek() == Some(")") {
                    return Err(self.error_here(format!("empty parentheses ({EXPECTED})")));
                }
                if self.peek().is_none() {
                    self.pos = open;
                    return Err(self.error_here("'(' is never closed".into()));
                }
                let e = self.exprlist()?;
                if self.peek() != Some(")") {
                    self.pos = open;
                    return Err(self.error_here("'(' is never closed".into()));
                }
                self.pos += 1;
                Ok(e)
            }
            "!" | "not" => {
                self.pos += 1;
                Ok(Expr::not(self.operand()?))
            }
            "src" | "dst" => {
                let end = if word == "src" { End::Local } else { End::Peer };
                self.pos += 1;
                let negate = match self.peek().and_then(op_of) {
                    Some(Op::Eq) => {
                        self.pos += 1;
                        false
                    }
                    Some(Op::Ne) => {
                        self.pos += 1;
                        true
                    }
                    Some(_) => {
                        return Err(self.error_here(format!(
                            "addresses compare with = or != only ('{word} 10.0.0.0/8', \
                             '{word} != 10.0.0.1'); for port ranges use sport/dport"
                        )))
                    }
                    None => false,
                };
                let Some(host) = self.peek() else {
                    return Err(self.error_at_end(format!(
                        "'{word}' needs an address: ADDR[/PREFIX][:PORT], e.g. 10.0.0.0/8, \
                         [::1]:443, :80"
                    )));
                };
                let (net, port) = parse_host(host).map_err(|m| self.error_here(m))?;
                self.pos += 1;
                let e = Expr::Host { end, net, port };
                Ok(if negate { Expr::not(e) } else { e })
            }
            "sport" | "dport" => {
                let end = if word == "sport" {
                    End::Local
                } else {
                    End::Peer
                };
                self.pos += 1;
                let op = match self.peek().and_then(op_of) {
                    Some(op) => {
                        self.pos += 1;
                        op
                    }
                    None => Op::Eq,
                };
                let Some(text) = self.peek() else {
                    return Err(
                        self.error_at_end(format!("'{word}' needs a port, e.g. '{word} = :443'"))
                    );
                };
                let port = parse_port(text, op != Op::Eq && op != Op::Ne)
                    .map_err(|m| self.error_here(m))?;
                self.pos += 1;
                let Some(port) = port else {
                    // `sport = *`: any port.
                    return Ok(Expr::Host {
                        end,
                        net: None,
                        port: None,
                    });
                };
                Ok(match op {
                    Op::Eq => Expr::port(end, port),
                    Op::Ne => Expr::not(Expr::port(end, port)),
                    Op::Ge => Expr::PortGe { end, port },
                    Op::Le => Expr::PortLe { end, port },
                    Op::Gt => Expr::not(Expr::PortLe { end, port }),
                    Op::Lt => Expr::not(Expr::PortGe { end, port }),
                })
            }
            _ => Err(self.error_here(unexpected(&word))),
        }
    }
}

/// What to say about a word that cannot start a condition: the sockscope spelling when the
/// word shows what was meant.
fn unexpected(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if word.parse::<StateSel>().is_ok() {
        return format!(
            "unexpected word '{word}': a state goes first, as 'state {lower}' (or --state {lower})"
        );
    }
    match lower.as_str() {
        "state" | "exclude" | "excl" => {
            return format!(
                "'{word}' must come before the expression: 'state established dport = :443'"
            )
        }
        "dev" | "fwmark" | "cgroup" | "autobound" => {
            return format!(
                "'{word}' filters are not supported by sockscope; it filters on sport, dport, \
                 src, dst and state"
            )
        }
        "port" => {
            return "unexpected word 'port': ss has no such condition; write \
                    '( sport = :N or dport = :N )', or use --port N"
                .into()
        }
        "and" | "&&" | "&" | "or" | "||" | "|" => {
            return format!("unexpected '{word}' with no condition before it ({EXPECTED})")
        }
        _ => {}
    }
    for kw in ["sport", "dport", "src", "dst"] {
        if let Some(rest) = lower.strip_prefix(kw) {
            let op: String = rest.chars().take_while(|c| "=!<>".contains(*c)).collect();
            if !op.is_empty() {
                let value = &rest[op.len()..];
                return format!(
                    "unexpected word '{word}': put spaces around the operator, as '{kw} {op} {value}'"
                );
            }
        }
    }
    if op_of(word).is_some() {
        return format!("unexpected '{word}': an operator goes after sport, dport, src or dst");
    }
    if parse_host(word).is_ok() {
        return format!("unexpected word '{word}': say which end, as 'dst {word}' or 'src {word}'");
    }
    format!("unexpected word '{word}' ({EXPECTED})")
}

/// A port after sport/dport: `:443`, `443`, or `*` (any port, `=`/`!=` only). `None` is any.
fn parse_port(text: &str, comparison: bool) -> Result<Option<u16>, String> {
    let t = text.strip_prefix(':').unwrap_or(text);
    if t == "*" {
        if comparison {
            return Err(format!(
                "'{text}': a port comparison needs a number, e.g. :1024"
            ));
        }
        return Ok(None);
    }
    match t.parse::<u32>() {
        Ok(n) if n <= 65535 => Ok(Some(n as u16)),
        Ok(_) => Err(format!("'{text}' is not a port: ports run from 0 to 65535")),
        Err(_) => Err(format!(
            "'{text}' is not a port: give a number, e.g. :443 (sockscope never looks up \
             service names)"
        )),
    }
}

/// src/dst's operand: `*`, `:PORT`, `ADDR`, `ADDR/PREFIX`, `ADDR:PORT`, `ADDR/PREFIX:PORT`,
/// `[V6]`, `[V6]:PORT`, `[V6]/PREFIX:PORT`; a bare IPv6 address (`::1`) is an address, where
/// ss would read its last group as a port.
fn parse_host(text: &str) -> Result<(Option<Cidr>, Option<u16>), String> {
    let bad = || {
        format!(
            "'{text}' is not an address: give ADDR[/PREFIX][:PORT], e.g. 10.0.0.0/8, \
             [::1]:443, *:80 (sockscope never looks up host names)"
        )
    };
    let port_of = |p: &str| -> Result<Option<u16>, String> { parse_port(p, false) };
    let (addr, port): (&str, Option<&str>) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.split_once(':') {
            Some((prefix, p)) => {
                return Ok((Some(cidr(inside, prefix).ok_or_else(bad)?), port_of(p)?));
            }
            None => return Ok((Some(cidr(inside, after).ok_or_else(bad)?), None)),
        }
    } else if text == "*" {
        ("", None)
    } else if let Some(p) = text.strip_prefix("*:") {
        ("", Some(p))
    } else if text.parse::<IpAddr>().is_ok() {
        (text, None)
    } else if let Some((a, p)) = text.split_once('/') {
        // ADDR/PREFIX[:PORT]: the port can only follow the prefix.
        match p.split_once(':') {
            Some((prefix, port)) => {
                return Ok((
                    Some(cidr(a, &format!("/{prefix}")).ok_or_else(bad)?),
                    port_of(port)?,
                ))
            }
            None => (text, None),
        }
    } else {
        match text.rsplit_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => port_of(p)?,
        None => None,
    };
    if addr.is_empty() || addr == "*" {
        return Ok((None, port));
    }
    let net: Cidr = addr.parse().map_err(|_| bad())?;
    Ok((Some(net), port))
}

/// `ADDR` plus `""` or `"/N"`.
fn cidr(addr: &str, prefix: &str) -> Option<Cidr> {
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return None;
    }
    format!("{addr}{prefix}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::TcpState;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    fn ok(s: &str) -> Query {
        parse(&words(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> ParseError {
        parse(&words(s)).expect_err(s)
    }

    fn dport(p: u16) -> Expr {
        Expr::port(End::Peer, p)
    }

    fn sport(p: u16) -> Expr {
        Expr::port(End::Local, p)
    }

    #[test]
    fn states_then_expression() {
        let q = ok("state established ( dport = :443 or sport = :443 ) dst 10.0.0.0/8");
        assert_eq!(q.states, Some(TcpState::Established.mask_bit()));
        let dst = Expr::Host {
            end: End::Peer,
            net: Some("10.0.0.0/8".parse().unwrap()),
            port: None,
        };
        assert_eq!(
            q.expr,
            Some(Expr::and(Expr::or(dport(443), sport(443)), dst))
        );
        // One quoted word, parentheses without spaces, state names as ss prints them.
        let q2 = parse(&[
            "state".into(),
            "ESTAB".into(),
            "(dport = :443 || sport == 443) && dst 10.0.0.0/8".into(),
        ])
        .unwrap();
        assert_eq!(q2, q);
        let q = ok("state time_wait state TIME-WAIT exclude bucket");
        assert_eq!(q.states, Some(0));
        let q = ok("exclude listening");
        assert_eq!(
            q.states,
            Some(all_states_mask() & !TcpState::Listening.mask_bit())
        );
        assert_eq!(ok("state connected").expr, None);
    }

    #[test]
    fn and_or_group_left_to_right_like_ss() {
        let q = ok("sport = :1 or sport = :2 and not dport > :3");
        let gt = Expr::not(Expr::not(Expr::PortLe {
            end: End::Peer,
            port: 3,
        }));
        assert_eq!(q.expr, Some(Expr::and(Expr::or(sport(1), sport(2)), gt)));
        assert_eq!(
            ok("sport :1 dport != 2").expr,
            Some(Expr::and(sport(1), Expr::not(dport(2))))
        );
        assert_eq!(
            ok("sport ge 10 sport lt 20").expr,
            Some(Expr::and(
                Expr::PortGe {
                    end: End::Local,
                    port: 10
                },
                Expr::not(Expr::PortGe {
                    end: End::Local,
                    port: 20
                })
            ))
        );
    }

    #[test]
    fn host_forms() {
        let h = |s: &str| parse_host(s).unwrap();
        let c = |s: &str| Some(s.parse::<Cidr>().unwrap());
        assert_eq!(h("10.0.0.1:443"), (c("10.0.0.1"), Some(443)));
        assert_eq!(h("10.0.0.0/8"), (c("10.0.0.0/8"), None));
        assert_eq!(h("10.0.0.0/8:80"), (c("10.0.0.0/8"), Some(80)));
        assert_eq!(h(":80"), (None, Some(80)));
        assert_eq!(h("*:80"), (None, Some(80)));
        assert_eq!(h("*"), (None, None));
        assert_eq!(h("[::1]:443"), (c("::1"), Some(443)));
        assert_eq!(h("[2001:db8::]/32:80"), (c("2001:db8::/32"), Some(80)));
        assert_eq!(h("::1"), (c("::1"), None));
        assert_eq!(h("2001:db8::/32"), (c("2001:db8::/32"), None));
        assert!(parse_host("example.com").is_err());
        assert!(parse_host("10.0.0.0/33").is_err());
        assert!(parse_host("10.0.0.1:http").is_err());
        assert!(parse_host("[::1").is_err());
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = err("state established foo = :80");
        assert_eq!(e.col, 18);
        assert_eq!(e.width, 3);
        assert_eq!(
            e.to_string(),
            "filter: unexpected word 'foo' (expected sport, dport, src, dst, not or '(')\n  \
             state established foo = :80\n                    ^^^"
        );
        let e = err("dport = :http");
        assert!(e.message.contains("never looks up service names"), "{e}");
        assert_eq!((e.col, e.width), (8, 5));
        let e = err("established");
        assert!(e.message.contains("'state established'"), "{e}");
        let e = err("dport=:443");
        assert!(e.message.contains("'dport = :443'"), "{}", e.message);
        let e = err("sport = :80 state listening");
        assert!(e.message.contains("before the expression"), "{e}");
        let e = err("dev = eth0");
        assert!(e.message.contains("not supported"), "{e}");
        let e = err("port = 80");
        assert!(e.message.contains("--port"), "{e}");
        let e = err("10.0.0.1");
        assert!(e.message.contains("'dst 10.0.0.1'"), "{e}");
        let e = err("( sport = :1");
        assert_eq!((e.col, e.message.as_str()), (0, "'(' is never closed"));
        let e = err("sport = :1 )");
        assert_eq!(e.col, 11);
        let e = err("sport = :1 or");
        assert!(e.message.contains("needs a condition after it"), "{e}");
        assert_eq!(e.col, 14);
        let e = err("state");
        assert!(e.message.contains("needs a state name"), "{e}");
        let e = err("state bogus");
        assert!(e.message.contains("unknown state 'bogus'"), "{e}");
        assert_eq!(e.col, 6);
        let e = err("dst > 10.0.0.1");
        assert!(e.message.contains("= or != only"), "{e}");
        let e = err("sport > *");
        assert!(e.message.contains("needs a number"), "{e}");
        let e = err("sport = :70000");
        assert!(e.message.contains("0 to 65535"), "{e}");
        let e = err("( )");
        assert!(e.message.contains("empty parentheses"), "{e}");
        let e = err("and sport = :1");
        assert!(e.message.contains("no condition before it"), "{e}");
        let e = err("not");
        assert!(e.message.contains("'not' needs a condition"), "{e}");
        let e = err("dst");
        assert!(e.message.contains("needs an address"), "{e}");
    }

    #[test]
    fn empty_filter_is_no_filter() {
        assert_eq!(parse(&[]).unwrap(), Query::default());
    }
}
