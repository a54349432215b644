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
