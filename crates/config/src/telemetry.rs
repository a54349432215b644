//! mod_wsgi 6's telemetry directives: `WSGITelemetryService unix:/path [interval=N]`
//! (where each process sends its datagrams, and how often), `WSGISlowRequests SECONDS`
//! (report requests running longer) and `WSGITelemetryOptions` (capture flags, in the
//! `Options` style: `+Flag`/`-Flag` layer over earlier lines, `Flag`, `None` and `All`
//! replace them; the two forms do not mix on one line).

use crate::ConfigError;

/// Where each process sends its telemetry, and what it captures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetryConfig {
    /// The ingester's socket (the path after `unix:`); None: no reporting.
    pub socket: Option<String>,
    /// Seconds between two samples (`interval=`; 1 when not given).
    pub interval: Option<f64>,
    /// Requests running at least this long are reported (WSGISlowRequests); 0 or None:
    /// none are.
    pub slow_requests: Option<f64>,
    /// `CaptureUserAgent`: slow-request records carry the User-Agent header.
    pub capture_user_agent: bool,
}

impl TelemetryConfig {
    /// The sampling interval in seconds.
    pub fn interval_seconds(&self) -> f64 {
        self.interval.unwrap_or(1.0)
    }
}

fn invalid(directive: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        directive,
        reason: reason.into(),
    }
}

/// `WSGITelemetryService unix:/path [interval=N]`.
pub fn parse_service(t: &mut TelemetryConfig, args: &[String]) -> Result<(), ConfigError> {
    const D: &str = "WSGITelemetryService";
    let path = args[0].strip_prefix("unix:").filter(|p| !p.is_empty());
    let Some(path) = path else {
        return Err(invalid(
            D,
            "the target must be 'unix:/path' (remote udp: targets are not supported)",
        ));
    };
    if let Some(interval) = args.get(1) {
        let seconds = interval
            .strip_prefix("interval=")
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| invalid(D, "the second argument must be 'interval=N'"))?;
        if !(seconds >= 0.5 && seconds.is_finite()) {
            return Err(invalid(D, "interval= is at least 0.5 seconds"));
        }
        t.interval = Some(seconds);
    }
    t.socket = Some(path.to_owned());
    Ok(())
}

/// `WSGISlowRequests SECONDS`.
pub fn parse_slow_requests(t: &mut TelemetryConfig, args: &[String]) -> Result<(), ConfigError> {
    let seconds = args[0]
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0 && s.is_finite())
        .ok_or_else(|| {
            invalid(
                "WSGISlowRequests",
                format!("'{}' is not a number of seconds", args[0]),
            )
        })?;
    t.slow_requests = Some(seconds);
    Ok(())
}

/// The capture flags there are: `CaptureUserAgent` only, as in mod_wsgi 6.1.
const FLAGS: [&str; 1] = ["CaptureUserAgent"];

/// `WSGITelemetryOptions None|All|Flag ...|[+|-]Flag ...`.
pub fn parse_options(t: &mut TelemetryConfig, args: &[String]) -> Result<(), ConfigError> {
    const D: &str = "WSGITelemetryOptions";
    let relative = args.iter().any(|a| a.starts_with(['+', '-']));
    let absolute = args.iter().any(|a| !a.starts_with(['+', '-']));
    if relative && absolute {
        return Err(invalid(
            D,
            "expected None, All, Flag ... or [+|-]Flag ... (absolute and +/- forms do not mix)",
        ));
    }
    let mut user_agent = if relative {
        t.capture_user_agent
    } else {
        false
    };
    for arg in args {
        let (sign, name) = match arg.as_bytes().first() {
            Some(b'+') => (Some(true), &arg[1..]),
            Some(b'-') => (Some(false), &arg[1..]),
            _ => (None, arg.as_str()),
        };
        if name.is_empty() {
            return Err(invalid(D, format!("'{arg}' names no flag")));
        }
        if name.eq_ignore_ascii_case("None") || name.eq_ignore_ascii_case("All") {
            if sign.is_some() {
                return Err(invalid(D, format!("'{arg}': None and All take no + or -")));
            }
            user_agent = name.eq_ignore_ascii_case("All");
            continue;
        }
        if !FLAGS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            return Err(invalid(
                D,
                format!("unknown flag '{name}' (known: {})", FLAGS.join(", ")),
            ));
        }
        user_agent = sign.unwrap_or(true);
    }
    t.capture_user_agent = user_agent;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split_words;

    fn words(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn the_service_takes_a_unix_path_and_an_interval_of_at_least_half_a_second() {
        let mut t = TelemetryConfig::default();
        parse_service(&mut t, &words("unix:/run/t.sock")).unwrap();
        assert_eq!(t.socket.as_deref(), Some("/run/t.sock"));
        assert_eq!(t.interval_seconds(), 1.0);
        parse_service(&mut t, &words("unix:/run/u.sock interval=0.5")).unwrap();
        assert_eq!(
            (t.socket.as_deref(), t.interval),
            (Some("/run/u.sock"), Some(0.5))
        );
        for bad in [
            "udp:h:1",
            "unix:",
            "unix:/x interval=0.4",
            "unix:/x every=2",
            "unix:/x interval=nan",
        ] {
            assert!(parse_service(&mut t, &words(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_layer_like_apache_options() {
        let mut t = TelemetryConfig::default();
        parse_options(&mut t, &words("+CaptureUserAgent")).unwrap();
        assert!(t.capture_user_agent);
        parse_options(&mut t, &words("-captureuseragent")).unwrap();
        assert!(!t.capture_user_agent);
        parse_options(&mut t, &words("All")).unwrap();
        assert!(t.capture_user_agent);
        parse_options(&mut t, &words("None")).unwrap();
        assert!(!t.capture_user_agent);
        parse_options(&mut t, &words("CaptureUserAgent")).unwrap();
        assert!(t.capture_user_agent);
        for bad in [
            "None +CaptureUserAgent",
            "+CaptureReferer",
            "+",
            "-All",
            "Bogus",
        ] {
            assert!(parse_options(&mut t, &words(bad)).is_err(), "{bad}");
        }
        assert!(t.capture_user_agent, "a refused line changes nothing");
    }

    #[test]
    fn slow_requests_take_seconds() {
        let mut t = TelemetryConfig::default();
        parse_slow_requests(&mut t, &words("2.5")).unwrap();
        assert_eq!(t.slow_requests, Some(2.5));
        assert!(parse_slow_requests(&mut t, &words("-1")).is_err());
        assert!(parse_slow_requests(&mut t, &words("soon")).is_err());
    }
}
