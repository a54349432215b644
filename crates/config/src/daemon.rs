//! `WSGIDaemonProcess name option=value ...`: a daemon process group, its options and
//! mod_wsgi's defaults.

use crate::{ConfigError, parse_options};
use std::time::Duration;

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// Every option `WSGIDaemonProcess` accepts.
pub const DAEMON_OPTIONS: [&str; 50] = [
    "processes",
    "threads",
    "user",
    "group",
    "supplementary-groups",
    "umask",
    "home",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
    "display-name",
    "maximum-requests",
    "maximum-requests-jitter",
    "rss-limit",
    "session-affinity",
    "restart-interval",
    "inactivity-timeout",
    "request-timeout",
    "graceful-timeout",
    "eviction-timeout",
    "shutdown-timeout",
    "startup-timeout",
    "deadlock-timeout",
    "connect-timeout",
    "socket-timeout",
    "queue-timeout",
    "listen-backlog",
    "socket-user",
    "header-buffer-size",
    "memory-limit",
    "virtual-memory-limit",
    "cpu-time-limit",
    "cpu-priority",
    "stack-size",
    "send-buffer-size",
    "receive-buffer-size",
    "chroot",
    "interrupt-timeout",
    "response-buffer-size",
    "response-flush-delay",
    "response-socket-timeout",
    "script-user",
    "script-group",
    "server-metrics",
    "switch-interval",
    // mod_wsgi_rs only.
    "gil-cpu-affinity",
    // mod_wsgi 4.x only: accepted so old configurations start, with a warning.
    "newrelic-config-file",
    "newrelic-environment",
];

/// Options accepted for compatibility that do nothing here (the warning names them).
pub const IGNORED_DAEMON_OPTIONS: [&str; 2] = ["newrelic-config-file", "newrelic-environment"];

/// The locale a daemon gets when neither `lang` nor `locale` is given.
pub const DEFAULT_LOCALE: &str = "C.UTF-8";

/// One `WSGIDaemonProcess` group as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub name: String,
    pub processes: u32,
    /// `processes=` was given at all; mod_wsgi then reports `wsgi.multiprocess` True.
    pub processes_given: bool,
    pub threads: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_groups: Vec<String>,
    pub umask: Option<u32>,
    pub home: Option<String>,
    pub lang: Option<String>,
    pub locale: Option<String>,
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    pub display_name: Option<String>,
    pub maximum_requests: u64,
    /// Our extension: each process recycles after maximum-requests plus a random 0..=N
    /// more, so the processes of a group do not all recycle at once.
    pub maximum_requests_jitter: u64,
    /// Our extension: a process whose resident memory exceeds this many bytes is recycled
    /// (without a gap, like maximum-requests); 0 is no limit.
    pub rss_limit: u64,
    /// Our extension: the cookie that pins a client to one of the group's processes.
    pub session_affinity: Option<String>,
    pub restart_interval: Duration,
    pub inactivity_timeout: Duration,
    pub request_timeout: Duration,
    pub graceful_timeout: Duration,
    pub eviction_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub startup_timeout: Duration,
    pub deadlock_timeout: Duration,
    pub connect_timeout: Duration,
    /// Zero means Apache's `Timeout`.
    pub socket_timeout: Duration,
    pub queue_timeout: Duration,
    pub listen_backlog: u32,
    pub socket_user: Option<String>,
    pub header_buffer_size: u32,
    pub memory_limit: u64,
    pub virtual_memory_limit: u64,
    pub cpu_time_limit: u64,
    pub cpu_priority: i32,
    pub stack_size: u64,
    /// SO_SNDBUF of the daemon's side of each connection, which bounds how much of a
    /// response can wait in the kernel for the Apache child; 0 = the system default.
    pub send_buffer_size: u32,
    /// SO_SNDBUF of the Apache child's side, which bounds how much of a request body can
    /// wait in the kernel for the daemon; 0 = the system default.
    pub receive_buffer_size: u32,
    /// `chroot=`: the directory the processes are confined to.
    pub chroot: Option<String>,
    /// `interrupt-timeout=` (mod_wsgi 6): how long an injected RequestTimeout may take.
    pub interrupt_timeout: Duration,
    /// `response-buffer-size=` (0: mod_wsgi's default).
    pub response_buffer_size: u32,
    /// `response-flush-delay=` in milliseconds.
    pub response_flush_delay: Duration,
    /// `response-socket-timeout=` (zero: socket-timeout).
    pub response_socket_timeout: Duration,
    /// `script-user=`/`script-group=`: WSGI scripts must be owned by this user or group.
    pub script_user: Option<String>,
    pub script_group: Option<String>,
    /// `server-metrics=On`: `mod_wsgi.server_metrics()` answers in these processes.
    pub server_metrics: bool,
    /// `switch-interval=`: Python's thread switch interval in seconds.
    pub switch_interval: Option<Duration>,
    /// `gil-cpu-affinity=` (On): with own-GIL interpreters, each GIL's requests run on
    /// their own share of the process's CPUs.
    pub gil_cpu_affinity: bool,
    /// Options given that are accepted for compatibility and do nothing.
    pub ignored_options: Vec<String>,
}

/// send-buffer-size when not given. mod_wsgi leaves the system default (208 KiB on
/// Linux), which holds a daemon thread until the Apache child has relayed all but the
/// last 208 KiB of a response; with 1 MiB (the kernel caps it at twice
/// net.core.wmem_max) most responses are handed over at once and the thread is free.
pub const DEFAULT_SEND_BUFFER_SIZE: u32 = 1 << 20;

impl DaemonSpec {
    /// A group with mod_wsgi's defaults.
    pub fn new(name: &str) -> Self {
        DaemonSpec {
            name: name.to_owned(),
            processes: 1,
            processes_given: false,
            threads: 15,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: None,
            home: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            display_name: None,
            maximum_requests: 0,
            maximum_requests_jitter: 0,
            rss_limit: 0,
            session_affinity: None,
            restart_interval: Duration::ZERO,
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            graceful_timeout: Duration::from_secs(15),
            eviction_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            startup_timeout: Duration::ZERO,
            deadlock_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            listen_backlog: 100,
            socket_user: None,
            header_buffer_size: 32768,
            memory_limit: 0,
            virtual_memory_limit: 0,
            cpu_time_limit: 0,
            cpu_priority: 0,
            stack_size: 0,
            send_buffer_size: DEFAULT_SEND_BUFFER_SIZE,
            receive_buffer_size: 0,
            chroot: None,
            interrupt_timeout: Duration::ZERO,
            response_buffer_size: 0,
            response_flush_delay: Duration::from_millis(5),
            response_socket_timeout: Duration::ZERO,
            script_user: None,
            script_group: None,
            server_metrics: false,
            switch_interval: None,
            gil_cpu_affinity: true,
            ignored_options: Vec::new(),
        }
    }

    /// Parses the directive's arguments: the group name, then `name=value` options.
    pub fn parse(args: &[String]) -> Result<Self, ConfigError> {
        let Some((name, options)) = args.split_first() else {
            return Err(invalid_text("a group name is required"));
        };
        if name.is_empty() || name.contains(['%', '/', '\0']) || name.contains(char::is_whitespace)
        {
            return Err(invalid(
                name,
                "a group name may not be empty or contain '%', '/' or spaces",
            ));
        }
        let mut spec = DaemonSpec::new(name);
        // As in mod_wsgi, a repeated option's last value wins.
        for (option, value) in
            crate::options::parse_options_last_wins(DIRECTIVE, options, &DAEMON_OPTIONS)?
        {
            spec.apply(option, value).map_err(|e| match e {
                ConfigError::InvalidValue { value, reason, .. } => ConfigError::Invalid {
                    directive: DIRECTIVE,
                    reason: format!("option {option}={value}: {reason}"),
                },
                other => other,
            })?;
        }
        if spec.script_user.is_some() && spec.script_group.is_some() {
            return Err(invalid_text(
                "only one of script-user and script-group is allowed",
            ));
        }
        if spec.lang.is_none() && spec.locale.is_none() {
            spec.locale = Some(DEFAULT_LOCALE.to_owned());
        }
        Ok(spec)
    }

    fn apply(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let text = || -> Result<Option<String>, ConfigError> {
            if value.is_empty() {
                return Err(invalid(value, "an empty value is not allowed"));
            }
            Ok(Some(value.to_owned()))
        };
        match option {
            "processes" => {
                self.processes = count(value, 1, 1024)?;
                self.processes_given = true;
            }
            // 0: no request threads, the processes run their WSGIImportScript services.
            "threads" => self.threads = count(value, 0, 1024)?,
            "user" => self.user = text()?,
            "group" => self.group = text()?,
            "supplementary-groups" => self.supplementary_groups = list(value, ','),
            "umask" => {
                self.umask = Some(
                    u32::from_str_radix(value, 8)
                        .ok()
                        .filter(|m| *m <= 0o777)
                        .ok_or_else(|| invalid(value, "umask must be octal, 0000 to 0777"))?,
                )
            }
            "home" => self.home = text()?,
            "lang" => self.lang = text()?,
            "locale" => self.locale = text()?,
            "python-home" => self.python_home = text()?,
            "python-path" => self.python_path = list(value, ':'),
            "python-eggs" => self.python_eggs = text()?,
            "display-name" => self.display_name = text()?,
            "maximum-requests" => self.maximum_requests = number(value)?,
            "maximum-requests-jitter" => self.maximum_requests_jitter = number(value)?,
            "rss-limit" => self.rss_limit = byte_size(value)?,
            "session-affinity" => {
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if value.is_empty() || !value.chars().all(token) {
                    return Err(invalid(value, "expected a cookie name (an HTTP token)"));
                }
                self.session_affinity = Some(value.to_owned());
            }
            "restart-interval" => self.restart_interval = seconds(value)?,
            "inactivity-timeout" => self.inactivity_timeout = seconds(value)?,
            "request-timeout" => self.request_timeout = seconds(value)?,
            "graceful-timeout" => self.graceful_timeout = seconds(value)?,
            "eviction-timeout" => self.eviction_timeout = seconds(value)?,
            "shutdown-timeout" => self.shutdown_timeout = seconds(value)?,
            "startup-timeout" => self.startup_timeout = seconds(value)?,
            "deadlock-timeout" => self.deadlock_timeout = seconds(value)?,
            "connect-timeout" => self.connect_timeout = seconds(value)?,
            "socket-timeout" => self.socket_timeout = seconds(value)?,
            "queue-timeout" => self.queue_timeout = seconds(value)?,
            "listen-backlog" => self.listen_backlog = count(value, 1, 65535)?,
            "socket-user" => self.socket_user = text()?,
            "header-buffer-size" => {
                self.header_buffer_size = match count(value, 0, 1 << 24)? {
                    0 => 32768,
                    n if n < 8192 => {
                        return Err(invalid(value, "header-buffer-size is 0 or at least 8192"));
                    }
                    n => n,
                }
            }
            "memory-limit" => self.memory_limit = number(value)?,
            "virtual-memory-limit" => self.virtual_memory_limit = number(value)?,
            "cpu-time-limit" => self.cpu_time_limit = number(value)?,
            "cpu-priority" => {
                self.cpu_priority = value
                    .parse::<i32>()
                    .ok()
                    .filter(|p| (-20..=19).contains(p))
                    .ok_or_else(|| invalid(value, "cpu-priority must be -20 to 19"))?
            }
            "stack-size" => self.stack_size = number(value)?,
            "send-buffer-size" => self.send_buffer_size = buffer_size(value)?,
            "receive-buffer-size" => self.receive_buffer_size = buffer_size(value)?,
            "chroot" => {
                if !value.starts_with('/') {
                    return Err(invalid(value, "chroot= needs an absolute path"));
                }
                self.chroot = text()?;
            }
            "interrupt-timeout" => self.interrupt_timeout = seconds(value)?,
            "response-buffer-size" => {
                let n = count(value, 0, u32::MAX)?;
                if n != 0 && n < 65536 {
                    return Err(invalid(
                        value,
                        "response-buffer-size is 0 or at least 65536",
                    ));
                }
                self.response_buffer_size = n;
            }
            "response-flush-delay" => {
                self.response_flush_delay = Duration::from_millis(number(value)?)
            }
            "response-socket-timeout" => self.response_socket_timeout = seconds(value)?,
            "script-user" => self.script_user = text()?,
            "script-group" => self.script_group = text()?,
            "server-metrics" => {
                self.server_metrics = crate::values::parse_on_off(DIRECTIVE, value)?
            }
            "switch-interval" => {
                self.switch_interval = Some(crate::values::positive_seconds(DIRECTIVE, value)?)
            }
            "gil-cpu-affinity" => {
                self.gil_cpu_affinity = crate::values::parse_on_off(DIRECTIVE, value)?
            }
            ignored if IGNORED_DAEMON_OPTIONS.contains(&ignored) => {
                self.ignored_options.push(ignored.to_owned());
            }
            _ => unreachable!("parse_options only yields allowed names"),
        }
        Ok(())
    }

    /// The argv[0] shown by `ps`, with `%{GROUP}` expanded to `(wsgi:NAME)`.
    pub fn process_title(&self) -> Option<String> {
        self.display_name
            .as_ref()
            .map(|d| d.replace("%{GROUP}", &format!("(wsgi:{})", self.name)))
    }

    /// `wsgi.run_once` as mod_wsgi computes it for this group.
    pub fn run_once(&self) -> bool {
        self.threads == 1 && self.maximum_requests == 1
    }
}

fn invalid(value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        directive: DIRECTIVE,
        value: value.to_owned(),
        reason,
    }
}

fn invalid_text(reason: &str) -> ConfigError {
    ConfigError::Invalid {
        directive: DIRECTIVE,
        reason: reason.to_owned(),
    }
}

fn list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(value: &str) -> Result<u64, ConfigError> {
    value
        .parse::<u64>()
        .map_err(|_| invalid(value, "expected a non-negative whole number"))
}

fn byte_size(value: &str) -> Result<u64, ConfigError> {
    crate::values::byte_size(DIRECTIVE, value)
}

fn count(value: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| invalid(value, "number out of range"))
}

fn seconds(value: &str) -> Result<Duration, ConfigError> {
    let secs = value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= 86_400 * 365)
        .ok_or_else(|| invalid(value, "expected a whole number of seconds"))?;
    Ok(Duration::from_secs(secs))
}

fn buffer_size(value: &str) -> Result<u32, ConfigError> {
    let n = value
        .parse::<u32>()
        .map_err(|_| invalid(value, "expected a size in bytes"))?;
    if n != 0 && n < 512 {
        return Err(invalid(
            value,
            "buffer sizes must be 0 (system default) or at least 512",
        ));
    }
    Ok(n)
}

/// `WSGIImportScript path process-group=NAME application-group=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    pub path: String,
    /// "" is embedded mode (the Apache children).
    pub process_group: String,
    /// "" is the main interpreter.
    pub application_group: String,
}

impl ImportScript {
    pub fn parse(args: &[String]) -> Result<Self, ConfigError> {
        const NAME: &str = "WSGIImportScript";
        let (path, options) = args.split_first().ok_or(ConfigError::Invalid {
            directive: NAME,
            reason: "a script path is required".to_owned(),
        })?;
        let options = parse_options(NAME, options, &["process-group", "application-group"])?;
        let get = |key: &str| options.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let (Some(process_group), Some(application_group)) =
            (get("process-group"), get("application-group"))
        else {
            return Err(ConfigError::Invalid {
                directive: NAME,
                reason: "both process-group= and application-group= are required".to_owned(),
            });
        };
        let static_name = |v: &str| -> Result<String, ConfigError> {
            match v {
                "%{GLOBAL}" => Ok(String::new()),
                v if v.contains("%{") => Err(ConfigError::InvalidValue {
                    directive: NAME,
                    value: v.to_owned(),
                    reason: "only %{GLOBAL} or a literal name is allowed",
                }),
                v => Ok(v.to_owned()),
            }
        };
        Ok(ImportScript {
            path: path.clone(),
            process_group: static_name(process_group)?,
            application_group: static_name(application_group)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_match_mod_wsgi() {
        let spec = DaemonSpec::parse(&args(&["app"])).unwrap();
        assert_eq!(spec.processes, 1);
        assert!(!spec.processes_given);
        assert_eq!(spec.threads, 15);
        assert_eq!(spec.graceful_timeout, Duration::from_secs(15));
        assert_eq!(spec.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(spec.connect_timeout, Duration::from_secs(15));
        assert_eq!(spec.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(spec.listen_backlog, 100);
        assert_eq!(spec.header_buffer_size, 32768);
        assert_eq!(spec.locale.as_deref(), Some(DEFAULT_LOCALE));
        // Ours on purpose (mod_wsgi: the system's); 0 asks for the system's.
        assert_eq!(spec.send_buffer_size, DEFAULT_SEND_BUFFER_SIZE);
        assert_eq!(spec.receive_buffer_size, 0);
        let system = DaemonSpec::parse(&args(&["app", "send-buffer-size=0"])).unwrap();
        assert_eq!(system.send_buffer_size, 0);
    }

    #[test]
    fn parses_options() {
        let spec = DaemonSpec::parse(&args(&[
            "app",
            "processes=2",
            "threads=4",
            "umask=0022",
            "python-path=/a:/b",
            "display-name=%{GROUP}",
            "maximum-requests=100",
            "maximum-requests-jitter=20",
            "rss-limit=512M",
            "session-affinity=WSGI_PIN",
            "request-timeout=30",
            "lang=en_US.UTF-8",
        ]))
        .unwrap();
        assert_eq!((spec.processes, spec.threads), (2, 4));
        assert!(spec.processes_given);
        assert_eq!(spec.umask, Some(0o022));
        assert_eq!(spec.python_path, ["/a", "/b"]);
        assert_eq!(spec.process_title().as_deref(), Some("(wsgi:app)"));
        assert_eq!(spec.maximum_requests, 100);
        assert_eq!(spec.maximum_requests_jitter, 20);
        assert_eq!(spec.rss_limit, 512 << 20);
        assert_eq!(spec.session_affinity.as_deref(), Some("WSGI_PIN"));
        assert_eq!(spec.request_timeout, Duration::from_secs(30));
        assert_eq!(spec.locale, None, "lang given: no default locale forced");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &["app", "threads=-1"][..],
            &["app", "processes=x"],
            &["app", "bogus=1"],
            &["app", "script-user=a", "script-group=b"],
            &["app", "header-buffer-size=100"],
            &["app", "response-buffer-size=1000"],
            &["app", "switch-interval=0"],
            &["app", "chroot=relative"],
            &["app", "server-metrics=maybe"],
            &["app", "gil-cpu-affinity=1"],
            &["app", "umask=999"],
            &["app", "user="],
            &["app", "send-buffer-size=10"],
            &["app", "graceful-timeout=-1"],
            &["app", "rss-limit=12X"],
            &["app", "rss-limit=M"],
            &["app", "session-affinity=a;b"],
            &["app", "session-affinity="],
            &["app", "rss-limit=99999999999G"],
            &["a/b"],
            &[],
        ] {
            assert!(DaemonSpec::parse(&args(bad)).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn mod_wsgi_6_options_parse_and_the_last_repeat_wins() {
        let spec = DaemonSpec::parse(&args(&[
            "app",
            "threads=2",
            "threads=0",
            "header-buffer-size=0",
            "chroot=/srv/jail",
            "interrupt-timeout=3",
            "response-buffer-size=65536",
            "response-flush-delay=10",
            "response-socket-timeout=7",
            "script-user=www-data",
            "server-metrics=On",
            "switch-interval=0.01",
            "gil-cpu-affinity=off",
            "newrelic-config-file=/etc/newrelic.ini",
        ]))
        .unwrap();
        assert_eq!(spec.threads, 0, "the last threads= wins; 0 is service mode");
        assert_eq!(spec.header_buffer_size, 32768, "0 is the default");
        assert_eq!(spec.chroot.as_deref(), Some("/srv/jail"));
        assert_eq!(spec.interrupt_timeout, Duration::from_secs(3));
        assert_eq!(spec.response_buffer_size, 65536);
        assert_eq!(spec.response_flush_delay, Duration::from_millis(10));
        assert_eq!(spec.response_socket_timeout, Duration::from_secs(7));
        assert_eq!(spec.script_user.as_deref(), Some("www-data"));
        assert!(spec.server_metrics);
        assert_eq!(spec.switch_interval, Some(Duration::from_millis(10)));
        assert!(!spec.gil_cpu_affinity);
        assert_eq!(spec.ignored_options, ["newrelic-config-file"]);
    }

    #[test]
    fn import_script_needs_both_groups() {
        let ok = ImportScript::parse(&args(&[
            "/x.wsgi",
            "process-group=app",
            "application-group=%{GLOBAL}",
        ]))
        .unwrap();
        assert_eq!(ok.process_group, "app");
        assert_eq!(ok.application_group, "");
        assert!(ImportScript::parse(&args(&["/x.wsgi", "process-group=app"])).is_err());
        assert!(
            ImportScript::parse(&args(&[
                "/x.wsgi",
                "process-group=app",
                "application-group=%{RESOURCE}"
            ]))
            .is_err()
        );
    }
}
