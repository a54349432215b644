//! `WSGISharedStore`: a named key/value store every process of the server shares, in
//! shared memory (optionally backed by a file) or in a Redis server.

use crate::ConfigError;
use crate::options::parse_options;

const DIRECTIVE: &str = "WSGISharedStore";
/// Memory of a store when `size=` is not given.
pub const DEFAULT_STORE_SIZE: u64 = 16 << 20;
/// The smallest `size=` accepted (the store's own minimum plus its control block).
pub const MIN_STORE_SIZE: u64 = 128 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// Shared memory mapped by the Apache parent; with `file`, a file mapping whose keys
    /// survive a stop.
    Memory { size: u64, file: Option<String> },
    /// A Redis server; keys are stored under `prefix`.
    Redis {
        host: String,
        port: u16,
        db: u32,
        /// From `redis://user:password@host` (ACL login) or `redis://:password@host`.
        username: Option<String>,
        password: Option<String>,
        prefix: String,
        timeout_ms: u64,
    },
}

/// Which processes may use a store. Processes of other daemon groups do not keep its
/// memory mapped (or its Redis login) and are told so when they ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAccess {
    /// `process-groups=a,b`: these daemon groups. None (default): every group whose
    /// processes run as Apache's user, not groups given another `user=`.
    pub process_groups: Option<Vec<String>>,
    /// `embedded=On|Off` (default On): Apache's own children (embedded mode).
    pub embedded: bool,
}

impl Default for StoreAccess {
    fn default() -> Self {
        StoreAccess {
            process_groups: None,
            embedded: true,
        }
    }
}

impl StoreAccess {
    /// Whether a daemon group (`Some(name)`, running as `uid`) or Apache's children
    /// (`None`) may use the store; `apache_uid` is the user Apache's children run as.
    pub fn allows(&self, process_group: Option<&str>, uid: u32, apache_uid: u32) -> bool {
        match (process_group, &self.process_groups) {
            (None, _) => self.embedded,
            (Some(group), Some(groups)) => groups.iter().any(|g| g == group),
            (Some(_), None) => uid == apache_uid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStoreSpec {
    pub name: String,
    pub backend: StoreBackend,
    pub access: StoreAccess,
}

fn invalid(value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        directive: DIRECTIVE,
        value: value.to_owned(),
        reason,
    }
}

impl SharedStoreSpec {
    /// `name [size=N[K|M|G]] [file=path]` or `name redis://[[user]:password@]host[:port][/db]
    /// [prefix=text] [timeout=seconds]`.
    pub fn parse(args: &[String]) -> Result<SharedStoreSpec, ConfigError> {
        let Some((name, rest)) = args.split_first() else {
            return Err(ConfigError::Invalid {
                directive: DIRECTIVE,
                reason: "a store name is required".to_owned(),
            });
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !valid_name {
            return Err(invalid(name, "use letters, digits, '_', '-' and '.'"));
        }
        let (access_options, rest): (Vec<String>, Vec<String>) =
            rest.iter().cloned().partition(|token| {
                token.starts_with("process-groups=") || token.starts_with("embedded=")
            });
        let access = access(&access_options)?;
        let backend = match rest.split_first() {
            Some((url, options)) if url.starts_with("redis://") => redis(name, url, options)?,
            _ => memory(&rest)?,
        };
        Ok(SharedStoreSpec {
            name: name.clone(),
            backend,
            access,
        })
    }
}

fn access(options: &[String]) -> Result<StoreAccess, ConfigError> {
    let mut access = StoreAccess::default();
    for (option, value) in parse_options(DIRECTIVE, options, &["process-groups", "embedded"])? {
        match option {
            "process-groups" => {
                let groups: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect();
                if groups.is_empty() {
                    return Err(invalid(value, "process-groups= lists daemon group names"));
                }
                access.process_groups = Some(groups);
            }
            _ => access.embedded = crate::values::parse_on_off(DIRECTIVE, value)?,
        }
    }
    Ok(access)
}

fn memory(options: &[String]) -> Result<StoreBackend, ConfigError> {
    let mut size = DEFAULT_STORE_SIZE;
    let mut file = None;
    for (option, value) in parse_options(DIRECTIVE, options, &["size", "file"])? {
        match option {
            "size" => {
                size = crate::values::byte_size(DIRECTIVE, value)?;
                if size < MIN_STORE_SIZE {
                    return Err(invalid(value, "a store needs at least 128K"));
                }
            }
            _ => {
                if !value.starts_with('/') {
                    return Err(invalid(value, "file= needs an absolute path"));
                }
                file = Some(value.to_owned());
            }
        }
    }
    Ok(StoreBackend::Memory { size, file })
}

fn redis(name: &str, url: &str, options: &[String]) -> Result<StoreBackend, ConfigError> {
    let rest = &url["redis://".len()..];
    let (authority, db) = match rest.split_once('/') {
        Some((a, "")) => (a, 0),
        Some((a, db)) => (
            a,
            db.parse()
                .map_err(|_| invalid(url, "the database after '/' must be a number"))?,
        ),
        None => (rest, 0),
    };
    let (login, authority) = match authority.rsplit_once('@') {
        Some((login, host)) => (Some(login), host),
        None => (None, authority),
    };
    let (username, password) = match login.map(|l| l.split_once(':')) {
        None => (None, None),
        Some(Some((user, password))) if !password.is_empty() => (
            Some(user.to_owned()).filter(|u| !u.is_empty()),
            Some(password.to_owned()),
        ),
        Some(_) => {
            return Err(invalid(
                url,
                "a login is written redis://user:password@host or redis://:password@host",
            ));
        }
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| invalid(url, "the port must be a number"))?,
        ),
        None => (authority, 6379),
    };
    if host.is_empty() {
        return Err(invalid(
            url,
            "expected redis://[[user]:password@]host[:port][/db]",
        ));
    }
    let mut prefix = format!("mod_wsgi:{name}:");
    let mut timeout_ms = 5_000;
    for (option, value) in parse_options(DIRECTIVE, options, &["prefix", "timeout"])? {
        match option {
            "prefix" => prefix = value.to_owned(),
            _ => {
                timeout_ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .map(|s| s * 1000)
                    .ok_or_else(|| invalid(value, "timeout= is whole seconds above 0"))?;
            }
        }
    }
    Ok(StoreBackend::Redis {
        host: host.to_owned(),
        port,
        db,
        username,
        password,
        prefix,
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<SharedStoreSpec, ConfigError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        SharedStoreSpec::parse(&args)
    }

    #[test]
    fn memory_stores_default_to_16m_without_a_file() {
        assert_eq!(
            parse("sessions").unwrap().backend,
            StoreBackend::Memory {
                size: 16 << 20,
                file: None
            }
        );
        assert_eq!(
            parse("s size=64M file=/var/lib/app/s.store")
                .unwrap()
                .backend,
            StoreBackend::Memory {
                size: 64 << 20,
                file: Some("/var/lib/app/s.store".into())
            }
        );
    }

    #[test]
    fn access_defaults_to_apaches_user_and_lists_groups() {
        let open = parse("s size=1M").unwrap().access;
        assert_eq!(open, StoreAccess::default());
        assert!(open.allows(None, 33, 33));
        assert!(open.allows(Some("web"), 33, 33));
        assert!(!open.allows(Some("tenant"), 1001, 33));
        let listed = parse("s process-groups=a,tenant embedded=Off size=1M")
            .unwrap()
            .access;
        assert_eq!(
            listed.process_groups,
            Some(vec!["a".to_owned(), "tenant".to_owned()])
        );
        assert!(!listed.allows(None, 33, 33));
        assert!(listed.allows(Some("tenant"), 1001, 33));
        assert!(!listed.allows(Some("web"), 33, 33));
        let redis = parse("r redis://h process-groups=a prefix=x:").unwrap();
        assert_eq!(redis.access.process_groups, Some(vec!["a".to_owned()]));
        let err = |l| parse(l).unwrap_err().to_string();
        assert!(err("s process-groups=").contains("daemon group names"));
        assert!(err("s embedded=maybe").contains("maybe"));
    }

    #[test]
    fn bad_values_are_named() {
        let err = |l| parse(l).unwrap_err().to_string();
        assert!(err("s size=12").contains("at least 128K"));
        assert!(err("s size=lots").contains("'lots'"));
        assert!(err("s file=rel/path").contains("absolute"));
        assert!(err("s colour=red").contains("unknown option 'colour'"));
        assert!(err("bad/name").contains("'bad/name'"));
        assert!(err("r redis://host:port").contains("port must be a number"));
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            parse("r redis://127.0.0.1:6380/2 timeout=2")
                .unwrap()
                .backend,
            StoreBackend::Redis {
                host: "127.0.0.1".into(),
                port: 6380,
                db: 2,
                username: None,
                password: None,
                prefix: "mod_wsgi:r:".into(),
                timeout_ms: 2000
            }
        );
        assert_eq!(
            parse("r redis://cache prefix=app:").unwrap().backend,
            StoreBackend::Redis {
                host: "cache".into(),
                port: 6379,
                db: 0,
                username: None,
                password: None,
                prefix: "app:".into(),
                timeout_ms: 5000
            }
        );
        let login = |line| match parse(line).unwrap().backend {
            StoreBackend::Redis {
                username,
                password,
                host,
                ..
            } => (username, password, host),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            login("r redis://app:s3cr@t@cache:6380"),
            (Some("app".into()), Some("s3cr@t".into()), "cache".into())
        );
        assert_eq!(
            login("r redis://:pw@cache"),
            (None, Some("pw".into()), "cache".into())
        );
        assert!(parse("r redis://user@cache").is_err());
        assert!(parse("r redis://user:@cache").is_err());
    }
}
