//! Scalar directive values: On/Off flags, optimisation level, hash seed, HEAD mapping,
//! and the trusted proxy header names.

use crate::ConfigError;

/// Parses Apache's On/Off (case-insensitive), as `AP_INIT_FLAG` would.
pub fn parse_on_off(directive: &'static str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(ConfigError::NotOnOff {
            directive,
            value: value.to_owned(),
        })
    }
}

/// `WSGIPythonOptimize 0|1|2`.
pub fn parse_optimize(value: &str) -> Result<i32, ConfigError> {
    match value.trim() {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(ConfigError::InvalidValue {
            directive: "WSGIPythonOptimize",
            value: value.to_owned(),
            reason: "must be 0, 1 or 2",
        }),
    }
}

/// `WSGIPythonHashSeed random|N`, N in 0..=4294967295.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    Random,
    Fixed(u32),
}

impl HashSeed {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if value.eq_ignore_ascii_case("random") {
            return Ok(HashSeed::Random);
        }
        value
            .parse::<u32>()
            .map(HashSeed::Fixed)
            .map_err(|_| ConfigError::InvalidValue {
                directive: "WSGIPythonHashSeed",
                value: value.to_owned(),
                reason: "must be 'random' or an integer from 0 to 4294967295",
            })
    }
}

/// `WSGIMapHEADToGET On|Off|Auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapHeadToGet {
    On,
    Off,
    /// Map only when an output filter that may alter content is installed. This is the
    /// default; C mod_wsgi before 6.0 treated an unset value as Off by mistake.
    #[default]
    Auto,
}

impl MapHeadToGet {
    /// Whether a HEAD request runs as GET: On, Off, or with Auto only when
    /// `has_content_filters` (asked only then) says an output filter may alter content.
    pub fn maps(self, has_content_filters: impl FnOnce() -> bool) -> bool {
        match self {
            MapHeadToGet::On => true,
            MapHeadToGet::Off => false,
            MapHeadToGet::Auto => has_content_filters(),
        }
    }

    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "on" => Ok(MapHeadToGet::On),
            "off" => Ok(MapHeadToGet::Off),
            "auto" => Ok(MapHeadToGet::Auto),
            _ => Err(ConfigError::InvalidValue {
                directive: "WSGIMapHEADToGET",
                value: value.to_owned(),
                reason: "must be On, Off or Auto",
            }),
        }
    }
}

/// A proxy header that `WSGITrustedProxyHeaders` may name, grouped by what it rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    XForwardedFor,
    XClientIp,
    XRealIp,
    XForwardedProto,
    XForwardedScheme,
    XForwardedSsl,
    XForwardedHttps,
    XHttps,
    XScheme,
    XForwardedHost,
    XHost,
    XForwardedServer,
    XForwardedPort,
    XScriptName,
    XForwardedScriptName,
}

/// What a proxy header rewrites. Headers of one category are synonyms: the last trusted
/// one present wins and the others are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyCategory {
    ClientAddr,
    Scheme,
    Host,
    ServerName,
    ServerPort,
    ScriptName,
}

impl ProxyHeader {
    pub const ALL: [ProxyHeader; 15] = [
        ProxyHeader::XForwardedFor,
        ProxyHeader::XClientIp,
        ProxyHeader::XRealIp,
        ProxyHeader::XForwardedProto,
        ProxyHeader::XForwardedScheme,
        ProxyHeader::XForwardedSsl,
        ProxyHeader::XForwardedHttps,
        ProxyHeader::XHttps,
        ProxyHeader::XScheme,
        ProxyHeader::XForwardedHost,
        ProxyHeader::XHost,
        ProxyHeader::XForwardedServer,
        ProxyHeader::XForwardedPort,
        ProxyHeader::XScriptName,
        ProxyHeader::XForwardedScriptName,
    ];

    /// The CGI variable name Apache gives this header (`HTTP_X_FORWARDED_FOR`).
    pub fn cgi_name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "HTTP_X_FORWARDED_FOR",
            ProxyHeader::XClientIp => "HTTP_X_CLIENT_IP",
            ProxyHeader::XRealIp => "HTTP_X_REAL_IP",
            ProxyHeader::XForwardedProto => "HTTP_X_FORWARDED_PROTO",
            ProxyHeader::XForwardedScheme => "HTTP_X_FORWARDED_SCHEME",
            ProxyHeader::XForwardedSsl => "HTTP_X_FORWARDED_SSL",
            ProxyHeader::XForwardedHttps => "HTTP_X_FORWARDED_HTTPS",
            ProxyHeader::XHttps => "HTTP_X_HTTPS",
            ProxyHeader::XScheme => "HTTP_X_SCHEME",
            ProxyHeader::XForwardedHost => "HTTP_X_FORWARDED_HOST",
            ProxyHeader::XHost => "HTTP_X_HOST",
            ProxyHeader::XForwardedServer => "HTTP_X_FORWARDED_SERVER",
            ProxyHeader::XForwardedPort => "HTTP_X_FORWARDED_PORT",
            ProxyHeader::XScriptName => "HTTP_X_SCRIPT_NAME",
            ProxyHeader::XForwardedScriptName => "HTTP_X_FORWARDED_SCRIPT_NAME",
        }
    }

    pub fn category(self) -> ProxyCategory {
        use ProxyHeader::*;
        match self {
            XForwardedFor | XClientIp | XRealIp => ProxyCategory::ClientAddr,
            XForwardedProto | XForwardedScheme | XForwardedSsl | XForwardedHttps | XHttps
            | XScheme => ProxyCategory::Scheme,
            XForwardedHost | XHost => ProxyCategory::Host,
            XForwardedServer => ProxyCategory::ServerName,
            XForwardedPort => ProxyCategory::ServerPort,
            XScriptName | XForwardedScriptName => ProxyCategory::ScriptName,
        }
    }

    /// Accepts the header as written in a request (`X-Forwarded-For`, any case).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let cgi = format!("HTTP_{}", value.to_ascii_uppercase().replace('-', "_"));
        ProxyHeader::ALL
            .into_iter()
            .find(|h| h.cgi_name() == cgi)
            .ok_or_else(|| ConfigError::InvalidValue {
                directive: "WSGITrustedProxyHeaders",
                value: value.to_owned(),
                reason: "not a proxy header mod_wsgi understands",
            })
    }
}

/// Bytes, optionally with a K, M or G suffix (powers of 1024).
pub(crate) fn byte_size(directive: &'static str, value: &str) -> Result<u64, ConfigError> {
    let invalid = || ConfigError::InvalidValue {
        directive,
        value: value.to_owned(),
        reason: "expected bytes, or a number with K, M or G",
    };
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c.to_ascii_uppercase()),
        _ => (value, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(invalid()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(invalid)
}

/// A positive number of seconds, fractions allowed (`0.005`), as WSGISwitchInterval and
/// `switch-interval=` take it.
pub fn positive_seconds(
    directive: &'static str,
    value: &str,
) -> Result<std::time::Duration, ConfigError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        // To the microsecond, as CPython keeps it (0.0125 as a binary fraction is a hair
        // under 12.5 ms).
        .map(|s| std::time::Duration::from_micros((s * 1e6).round() as u64))
        .ok_or_else(|| ConfigError::InvalidValue {
            directive,
            value: value.to_owned(),
            reason: "expected a positive number of seconds",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_maps_to_get_when_on_or_when_filters_may_alter_content() {
        assert!(MapHeadToGet::On.maps(|| unreachable!()));
        assert!(!MapHeadToGet::Off.maps(|| unreachable!()));
        assert!(MapHeadToGet::Auto.maps(|| true));
        assert!(!MapHeadToGet::Auto.maps(|| false));
        assert!(!MapHeadToGet::default().maps(|| false));
    }

    #[test]
    fn on_off() {
        assert_eq!(parse_on_off("D", "ON"), Ok(true));
        assert_eq!(parse_on_off("D", "off"), Ok(false));
        assert!(parse_on_off("D", "yes").is_err());
    }

    #[test]
    fn hash_seed() {
        assert_eq!(HashSeed::parse("random"), Ok(HashSeed::Random));
        assert_eq!(HashSeed::parse("4294967295"), Ok(HashSeed::Fixed(u32::MAX)));
        assert!(HashSeed::parse("4294967296").is_err());
        assert!(HashSeed::parse("-1").is_err());
    }

    #[test]
    fn optimize_and_head() {
        assert_eq!(parse_optimize("2"), Ok(2));
        assert!(parse_optimize("3").is_err());
        assert_eq!(MapHeadToGet::parse("AUTO"), Ok(MapHeadToGet::Auto));
        assert!(MapHeadToGet::parse("maybe").is_err());
    }

    #[test]
    fn proxy_headers() {
        assert_eq!(
            ProxyHeader::parse("x-forwarded-for"),
            Ok(ProxyHeader::XForwardedFor)
        );
        assert_eq!(
            ProxyHeader::parse("X-Forwarded-Proto").unwrap().category(),
            ProxyCategory::Scheme
        );
        assert_eq!(
            ProxyHeader::parse("X-Forwarded-Script-Name")
                .unwrap()
                .category(),
            ProxyCategory::ScriptName
        );
        assert!(ProxyHeader::parse("X-Evil").is_err());
    }
}
