//! The daemon process groups of the running configuration, as the Apache parent set them
//! up in post_config; Apache children and daemons inherit the table through fork.

use super::keepalive::IdleConnections;
use crate::python::PythonSettings;
use mod_wsgi_config::{DaemonSpec, ScriptOwner};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const SECRET_LEN: usize = mod_wsgi_wire::SECRET_LEN;

/// A script to load into an interpreter before the process takes requests.
#[derive(Debug, Clone)]
pub struct Preload {
    pub script: PathBuf,
    pub application_group: String,
}

/// A per-process socket of a group with session affinity: lane i is served by the
/// process in slot i (and its successors).
#[derive(Debug, Clone)]
pub struct Lane {
    pub path: PathBuf,
    pub fd: RawFd,
}

/// One `WSGIDaemonProcess` group, ready to fork and to be connected to.
#[derive(Debug)]
pub struct DaemonGroup {
    pub spec: DaemonSpec,
    pub socket_path: PathBuf,
    pub listener_fd: RawFd,
    /// With session affinity, one socket per process slot (else empty).
    pub lanes: Vec<Lane>,
    /// This Apache child's kept-alive connections to the group's sockets (always empty
    /// in the parent, which never proxies, so forks inherit none).
    pub idle: IdleConnections,
    /// Authenticates requests; kept with the socket across graceful restarts, so old and
    /// new generations of Apache children and daemons can serve each other meanwhile.
    pub secret: [u8; SECRET_LEN],
    pub uid: u32,
    pub gid: u32,
    pub supplementary_gids: Vec<u32>,
    pub user_name: String,
    /// Working directory, also put first on sys.path.
    pub home: String,
    /// Whether the process changes into `home`: not when `home` is only the directory
    /// Apache was started from (a group without home= and user=), which the process
    /// inherits anyway and which its user may not be allowed to enter.
    pub enter_home: bool,
    /// socket-timeout, or Apache's `Timeout` when unset.
    pub socket_timeout: Duration,
    pub preloads: Vec<Preload>,
    pub python: PythonSettings,
    /// ServerName of the virtual host that defined the group; None at server level.
    pub virtual_host: Option<String>,
    pub script_owner: Option<ScriptOwner>,
    /// Largest request head (environ included) a daemon accepts: what Apache's request
    /// limits let through (LimitRequestLine, LimitRequestFields, LimitRequestFieldSize
    /// of every server), with room for the variables Apache and the config add.
    pub max_request_head: usize,
    /// Which processes serve and why the last start failed, shared by the generation.
    pub health: mod_wsgi_store::GroupHealth,
    /// One "replace me" flag per slot pair (see `Lineage::replace_flag`).
    pub recycle_flags: &'static [AtomicU64],
    /// The group's own shared mapping, holding `recycle_flags` and the health words:
    /// read-only in the other groups' daemons.
    pub control: &'static [AtomicU64],
}

impl DaemonGroup {
    /// Every listening socket of the group: its shared one and its lanes.
    pub fn listener_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.listener_fd).chain(self.lanes.iter().map(|l| l.fd))
    }

    /// The listening socket the process in slot `lane` accepts on.
    pub fn serving_fd(&self, lane: usize) -> RawFd {
        self.lanes.get(lane).map_or(self.listener_fd, |l| l.fd)
    }

    /// The socket a request for `lane` connects to (the shared one without affinity).
    pub fn socket_for(&self, lane: Option<usize>) -> &std::path::Path {
        lane.and_then(|l| self.lanes.get(l))
            .map_or(&self.socket_path, |l| &l.path)
    }

    /// Whether a request to a server (named by its configured ServerName, main server
    /// or virtual host) may use this group: a group defined at server level serves
    /// every server, one defined in a virtual host only servers of the same ServerName.
    pub fn serves(&self, server_hostname: &str) -> bool {
        self.virtual_host
            .as_deref()
            .is_none_or(|own| own == server_hostname)
    }

    /// How long one write to the client may take: response-socket-timeout, else an
    /// explicit socket-timeout (as mod_wsgi); None leaves it to Apache's Timeout.
    pub fn client_write_timeout(&self) -> Option<Duration> {
        [self.spec.response_socket_timeout, self.spec.socket_timeout]
            .into_iter()
            .find(|t| !t.is_zero())
    }

    /// Closes the group's listening sockets and removes their files (a hard stop).
    pub fn remove_sockets(&self) {
        self.listener_fds().for_each(crate::socket::close);
        let lanes = self.lanes.iter().map(|l| &l.path);
        for path in std::iter::once(&self.socket_path).chain(lanes) {
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn accepts_secret(&self, secret: &[u8; SECRET_LEN]) -> bool {
        self.secret
            .iter()
            .zip(secret)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

/// One server's request limits (LimitRequestLine, LimitRequestFields,
/// LimitRequestFieldSize), as Apache keeps them.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub line: i32,
    pub fields: i32,
    pub field_size: i32,
}

/// The largest request head a daemon must accept: the most any server's limits let a
/// client send, twice over for the variables Apache and the configuration add, and never
/// less than 16 MiB. LimitRequestFields 0 (no limit) counts as 1000 fields.
pub fn max_request_head(servers: &[RequestLimits]) -> usize {
    let largest = servers
        .iter()
        .map(|l| {
            let [line, fields, field_size] =
                [l.line, l.fields, l.field_size].map(|n| usize::try_from(n).unwrap_or(0));
            let fields = if fields == 0 { 1000 } else { fields };
            line.saturating_add(fields.saturating_mul(field_size))
        })
        .max()
        .unwrap_or(0);
    largest
        .saturating_mul(2)
        .saturating_add(1 << 20)
        .max(16 << 20)
}

static GROUPS: RwLock<Vec<Arc<DaemonGroup>>> = RwLock::new(Vec::new());

/// Replaces the table (Apache parent, post_config).
pub fn set_groups(groups: Vec<Arc<DaemonGroup>>) {
    *GROUPS.write().unwrap_or_else(|p| p.into_inner()) = groups;
}

pub fn current_groups() -> Vec<Arc<DaemonGroup>> {
    GROUPS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

pub fn find_group(name: &str) -> Option<Arc<DaemonGroup>> {
    GROUPS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|g| g.spec.name == name)
        .cloned()
}

/// A request refused on the way to a daemon group: the status and the message logged.
pub use mod_wsgi_http::Refusal;

/// The script a request runs and the server it came to, as a group's checks need them.
pub struct RequestScript<'a> {
    /// Owner (uid, gid) of the script file.
    pub owner: (u32, u32),
    pub path: &'a std::path::Path,
    /// The ServerName of the server (main or virtual host) the request came to.
    pub server_hostname: &'a str,
}

/// The daemon group a request's process group names (None for embedded mode, an empty
/// name), found by `find`, if the request may use it: the group takes requests
/// (threads > 0), the script's owner is the one script-user=/script-group= require, and
/// the group serves the request's server.
pub fn group_for_request(
    process_group: &str,
    find: impl FnOnce(&str) -> Option<Arc<DaemonGroup>>,
    request: &RequestScript<'_>,
) -> Result<Option<Arc<DaemonGroup>>, Refusal> {
    if process_group.is_empty() {
        return Ok(None);
    }
    let refuse = |status, message| Err(Refusal { status, message });
    match find(process_group) {
        Some(g) if g.spec.threads == 0 => refuse(
            500,
            format!(
                "WSGI1043: daemon process group '{process_group}' has threads=0: it runs its WSGIImportScript services and takes no requests"
            ),
        ),
        Some(g)
            if g.script_owner
                .is_some_and(|o| !o.allows(request.owner.0, request.owner.1)) =>
        {
            let (uid, gid) = request.owner;
            refuse(
                403,
                format!(
                    "WSGI1044: script '{}' (uid {uid}, gid {gid}) is not owned as script-user=/script-group= of daemon process group '{process_group}' require; refused",
                    request.path.display()
                ),
            )
        }
        Some(g) if g.serves(request.server_hostname) => Ok(Some(g)),
        Some(g) => refuse(
            500,
            format!(
                "WSGI0152: daemon process group '{process_group}' was defined in virtual host '{}' and cannot be used by server '{}'; define the group at server level, or in each virtual host that uses it (with its own name)",
                g.virtual_host.as_deref().unwrap_or_default(),
                request.server_hostname
            ),
        ),
        None => refuse(
            500,
            format!(
                "WSGI0150: no WSGI daemon process called '{process_group}' has been configured"
            ),
        ),
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;
    use mod_wsgi_store::GroupHealth;

    fn group(
        args: &[&str],
        virtual_host: Option<&str>,
        owner: Option<ScriptOwner>,
    ) -> Arc<DaemonGroup> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let words: &'static [AtomicU64] = Box::leak(
            (0..1 + GroupHealth::words_for(2))
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        Arc::new(DaemonGroup {
            spec: DaemonSpec::parse(&args).unwrap(),
            socket_path: PathBuf::from("/run/wsgi.sock"),
            listener_fd: -1,
            lanes: Vec::new(),
            idle: IdleConnections::new(0),
            secret: [0; SECRET_LEN],
            uid: 0,
            gid: 0,
            supplementary_gids: Vec::new(),
            user_name: String::new(),
            home: "/".to_owned(),
            enter_home: false,
            socket_timeout: Duration::from_secs(60),
            preloads: Vec::new(),
            python: PythonSettings::default(),
            virtual_host: virtual_host.map(str::to_owned),
            script_owner: owner,
            max_request_head: 16 << 20,
            health: GroupHealth::new(&words[1..]),
            recycle_flags: &words[..1],
            control: words,
        })
    }

    fn script(server_hostname: &str) -> RequestScript<'_> {
        RequestScript {
            owner: (1000, 1000),
            path: std::path::Path::new("/srv/app.wsgi"),
            server_hostname,
        }
    }

    fn status(
        process_group: &str,
        found: Option<Arc<DaemonGroup>>,
        request: &RequestScript<'_>,
    ) -> Result<bool, u16> {
        group_for_request(process_group, |_| found, request)
            .map(|g| g.is_some())
            .map_err(|r| r.status)
    }

    #[test]
    fn client_writes_are_bounded_by_the_response_timeout_first() {
        let g = group(&["app"], None, None);
        assert_eq!(g.client_write_timeout(), None);
        let g = group(&["app", "socket-timeout=30"], None, None);
        assert_eq!(g.client_write_timeout(), Some(Duration::from_secs(30)));
        let g = group(
            &["app", "socket-timeout=30", "response-socket-timeout=5"],
            None,
            None,
        );
        assert_eq!(g.client_write_timeout(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn an_empty_process_group_is_embedded_mode() {
        let looked = std::cell::Cell::new(false);
        let found = group_for_request(
            "",
            |_| {
                looked.set(true);
                None
            },
            &script("a"),
        );
        assert_eq!(found.map(|g| g.is_none()), Ok(true));
        assert!(!looked.get());
    }

    #[test]
    fn a_group_that_serves_the_server_is_used() {
        let g = group(&["app"], None, None);
        assert_eq!(status("app", Some(g), &script("any.example.com")), Ok(true));
        let g = group(&["app"], Some("www.example.com"), None);
        assert_eq!(status("app", Some(g), &script("www.example.com")), Ok(true));
    }

    #[test]
    fn unknown_groups_and_groups_without_threads_are_errors() {
        let none = group_for_request("nope", |_| None, &script("a")).unwrap_err();
        assert_eq!(none.status, 500);
        assert_eq!(
            none.message,
            "WSGI0150: no WSGI daemon process called 'nope' has been configured"
        );
        let g = group(&["svc", "threads=0"], None, None);
        let refused = group_for_request("svc", |_| Some(g), &script("a")).unwrap_err();
        assert_eq!(refused.status, 500);
        assert!(
            refused
                .message
                .starts_with("WSGI1043: daemon process group 'svc' has threads=0")
        );
    }

    #[test]
    fn another_virtual_hosts_group_is_refused() {
        let g = group(&["app"], Some("www.example.com"), None);
        let refused =
            group_for_request("app", |_| Some(g), &script("other.example.com")).unwrap_err();
        assert_eq!(refused.status, 500);
        assert!(refused.message.starts_with(
            "WSGI0152: daemon process group 'app' was defined in virtual host 'www.example.com' and cannot be used by server 'other.example.com'"
        ));
    }

    #[test]
    fn script_owner_is_checked_before_the_server() {
        let g = group(
            &["app"],
            Some("www.example.com"),
            Some(ScriptOwner::User(0)),
        );
        let refused =
            group_for_request("app", |_| Some(g), &script("other.example.com")).unwrap_err();
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.message,
            "WSGI1044: script '/srv/app.wsgi' (uid 1000, gid 1000) is not owned as script-user=/script-group= of daemon process group 'app' require; refused"
        );
        let g = group(&["app"], None, Some(ScriptOwner::User(1000)));
        assert_eq!(status("app", Some(g), &script("a")), Ok(true));
    }
}

#[cfg(test)]
mod limits_tests {
    use super::*;

    #[test]
    fn the_head_bound_follows_the_largest_server_limits() {
        let stock = RequestLimits {
            line: 8190,
            fields: 100,
            field_size: 8190,
        };
        assert_eq!(max_request_head(&[stock]), 16 << 20);
        assert_eq!(max_request_head(&[]), 16 << 20);
        let raised = RequestLimits {
            line: 8190,
            fields: 100,
            field_size: 1 << 20,
        };
        let bound = max_request_head(&[stock, raised]);
        assert!(bound >= 2 * 100 * (1 << 20), "{bound}");
        let unlimited = RequestLimits {
            line: 8190,
            fields: 0,
            field_size: 65536,
        };
        assert!(max_request_head(&[unlimited]) >= 2 * 1000 * 65536);
        let absurd = RequestLimits {
            line: i32::MAX,
            fields: i32::MAX,
            field_size: i32::MAX,
        };
        assert!(max_request_head(&[absurd]) > 0);
    }
}
