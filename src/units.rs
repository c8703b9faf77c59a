//! Durations as people type them on the command line: `3s`, `250ms`, `2m`, `1h`, or a bare
//! number of seconds. One parser for every flag (`--interval`, `--duration`, `--timeout`…),
//! run by clap before anything touches the system.

use std::time::Duration;

/// Parses `N`, `Nms`, `Ns`, `Nm` or `Nh` (N may have a fraction: `1.5s`), 0 up to 30 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let bad = || format!("'{s}' is not a duration: write e.g. 3s, 250ms, 2m or 1h");
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' is not a duration: it must be 0 or more"));
    }
    let secs = v * scale;
    if secs > 30.0 * 86_400.0 {
        return Err(format!("'{s}' is too long: at most 30 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration of more than zero (timeouts, latencies).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("NaN").is_err());
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("800h").is_err());
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("NaNs").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert!(parse_positive_duration("0")
            .unwrap_err()
            .contains("more than zero"));
        assert_eq!(
            parse_positive_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
    }
}
