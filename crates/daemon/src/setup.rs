//! Daemon groups built from the configuration in the Apache parent: the checks made once
//! the whole configuration is read, the warnings about definitions, each group's record
//! (its sockets bound or kept from the previous generation), and the sockets and
//! processes a generation hands to the next.

use crate::group::{DaemonGroup, Lane, Preload};
use crate::keepalive::IdleConnections;
use crate::python::{ApacheFacts, PythonSettings};
use crate::restart_record::KeptSocket;
use crate::run_as::{GroupIdentity, RunAs, run_as};
use crate::socket::{MAX_SOCKET_PATH, keep_or_bind, lane_path, socket_path};
use crate::supervisor::HandedOver;
use mod_wsgi_config::{DaemonDefinition, DaemonSpec, ServerConfig};
use mod_wsgi_os::identity::{self, Account};
use mod_wsgi_store::GroupHealth;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The sockets a previous generation left open: path -> (fd, secret).
pub type PreviousSockets = HashMap<PathBuf, (i32, [u8; 32])>;

/// The sockets the restart record keeps (`kept_sockets` of the previous generation), by
/// path.
pub fn previous_sockets(kept: Vec<KeptSocket>) -> PreviousSockets {
    kept.into_iter()
        .map(|s| (s.path, (s.fd, s.secret)))
        .collect()
}

/// Apache's `Timeout` (microseconds) as a group's socket-timeout: 60 s if it is negative,
/// never under one second.
pub fn apache_timeout(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(60_000_000)).max(Duration::from_secs(1))
}

/// Refuses a group whose socket path (its longest lane with session affinity, for the
/// largest parent pid) would not fit a Unix socket address.
pub fn check_socket_paths(defined: &[&DaemonDefinition], prefix: &str) -> Result<(), String> {
    for d in defined {
        let worst = match d.spec.session_affinity {
            Some(_) => lane_path(
                &socket_path(prefix, 9_999_999, &d.spec.name),
                d.spec.processes as usize,
            ),
            None => socket_path(prefix, 9_999_999, &d.spec.name),
        };
        if worst.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(format!(
                "WSGIDaemonProcess '{}' ({}): socket path '{}' would exceed {} bytes; shorten WSGISocketPrefix",
                d.spec.name,
                d.defined_at,
                worst.display(),
                MAX_SOCKET_PATH
            ));
        }
    }
    Ok(())
}

/// What a group's definition asks that has no effect: options mod_wsgi 6 removed, and
/// lang=/locale= values this system lacks (`locale_exists`).
pub fn definition_warnings(
    d: &DaemonDefinition,
    locale_exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for ignored in &d.spec.ignored_options {
        out.push(format!(
            "WSGI1141: WSGIDaemonProcess '{}' ({}): {ignored}= was removed in mod_wsgi 6 and has no effect; remove it",
            d.spec.name, d.defined_at
        ));
    }
    for (option, value) in [("lang", &d.spec.lang), ("locale", &d.spec.locale)] {
        if let Some(v) = value
            && !locale_exists(v)
        {
            // mod_wsgi starts too (wsgi-express always writes en_US.UTF-8).
            out.push(format!(
                "WSGI0079: WSGIDaemonProcess '{}' ({}): {option}='{v}' is not a locale this system has (see `locale -a`); its processes run in the C locale",
                d.spec.name, d.defined_at
            ));
        }
    }
    out
}

/// Apache's own user (User/Group): the account the system knows for its uid, else one
/// made of what Apache read, with `/` as home.
pub fn apache_account(uid: u32, gid: u32, name: String) -> Account {
    identity::user(&format!("#{uid}")).unwrap_or(Account {
        name,
        uid,
        gid,
        home: "/".to_owned(),
    })
}

/// What the Apache parent knows of itself that every group takes.
pub struct ParentFacts {
    /// Apache's User and Group.
    pub apache_account: Account,
    /// Apache's `Timeout`: a group's socket-timeout when it sets none.
    pub apache_timeout: Duration,
    /// See `DaemonGroup::max_request_head`.
    pub max_request_head: usize,
    pub apache: ApacheFacts,
    /// The directory Apache runs in: home of a group without home= and user=.
    pub current_dir: String,
}

/// Where a group belongs: the virtual host that defined it, and its shared words.
pub struct GroupPlace {
    pub virtual_host: Option<String>,
    pub health: GroupHealth,
    pub recycle_flags: &'static [AtomicU64],
    pub control: &'static [AtomicU64],
}

/// A group's Python settings: the embedded ones (`embedded`), with what the group sets
/// itself and what its processes and threads make it.
pub fn group_python(
    spec: &DaemonSpec,
    embedded: PythonSettings,
    home: &str,
    apache: ApacheFacts,
) -> PythonSettings {
    PythonSettings {
        python_home: spec.python_home.clone().or(embedded.python_home.clone()),
        python_path: spec.python_path.clone(),
        process_group: spec.name.clone(),
        multithread: spec.threads > 1,
        multiprocess: spec.processes_given || spec.processes > 1,
        maximum_processes: spec.processes,
        threads_per_process: spec.threads,
        home_on_path: Some(home.to_owned()),
        apache,
        switch_interval: spec.switch_interval.or(embedded.switch_interval),
        server_metrics: spec.server_metrics,
        ..embedded
    }
}

/// socket-timeout, or Apache's `Timeout` when it is zero (unset).
pub fn socket_timeout(spec: &DaemonSpec, apache_timeout: Duration) -> Duration {
    if spec.socket_timeout.is_zero() {
        apache_timeout
    } else {
        spec.socket_timeout
    }
}

/// The scripts a group's processes load at start (WSGIImportScript naming the group).
pub fn preloads_for(configs: &[&ServerConfig], name: &str) -> Vec<Preload> {
    mod_wsgi_config::preloads_for(configs, name)
        .into_iter()
        .map(|(script, application_group)| Preload {
            script: PathBuf::from(script),
            application_group,
        })
        .collect()
}

/// One group, its socket (and lanes) kept from `previous` or bound under `prefix`, with a
/// kept secret or a new one.
#[allow(clippy::too_many_arguments)]
pub fn build_group(
    d: &DaemonDefinition,
    place: GroupPlace,
    main: &ServerConfig,
    configs: &[&ServerConfig],
    prefix: &str,
    parent: &ParentFacts,
    previous: &mut PreviousSockets,
) -> Result<DaemonGroup, String> {
    let apache = &parent.apache_account;
    let RunAs {
        account,
        gid,
        home,
        enter_home,
    } = run_as(
        GroupIdentity {
            user: d.user.as_ref(),
            gid: d.gid,
            home: d.spec.home.as_deref(),
        },
        apache.clone(),
        &parent.current_dir,
        |dir| std::path::Path::new(dir).is_dir(),
    );
    let path = socket_path(prefix, std::process::id(), &d.spec.name);
    let owner = d
        .socket_user
        .as_ref()
        .map_or((apache.uid, apache.gid), |u| (u.uid, u.gid));
    let mut open_socket = |path: &std::path::Path| {
        keep_or_bind(path, previous, d.spec.listen_backlog, owner).map_err(|e| {
            format!(
                "WSGIDaemonProcess '{}' ({}): cannot create socket '{}': {e}",
                d.spec.name,
                d.defined_at,
                path.display()
            )
        })
    };
    let (fd, kept_secret) = open_socket(&path)?;
    let mut lanes = Vec::new();
    if d.spec.session_affinity.is_some() {
        for index in 0..d.spec.processes as usize {
            let lane = lane_path(&path, index);
            let (fd, _) = open_socket(&lane)?;
            lanes.push(Lane { path: lane, fd });
        }
    }
    let embedded = PythonSettings::from_config(&main.python);
    let python = group_python(&d.spec, embedded, &home, parent.apache.clone());
    let secret = match kept_secret {
        Some(secret) => secret,
        None => mod_wsgi_wire::new_secret().map_err(|e| e.to_string())?,
    };
    Ok(DaemonGroup {
        spec: d.spec.clone(),
        socket_path: path,
        listener_fd: fd,
        idle: IdleConnections::new(lanes.len()),
        lanes,
        secret,
        uid: account.uid,
        gid,
        supplementary_gids: d.supplementary_gids.clone(),
        user_name: account.name,
        home,
        enter_home,
        socket_timeout: socket_timeout(&d.spec, parent.apache_timeout),
        preloads: preloads_for(configs, &d.spec.name),
        virtual_host: place.virtual_host,
        script_owner: d.script_owner,
        max_request_head: parent.max_request_head,
        health: place.health,
        recycle_flags: place.recycle_flags,
        control: place.control,
        python,
    })
}

/// Every listening socket of `groups` with its group's secret, for the next generation.
pub fn kept_sockets(groups: &[Arc<DaemonGroup>]) -> Vec<KeptSocket> {
    groups
        .iter()
        .flat_map(|g| {
            std::iter::once((&g.socket_path, g.listener_fd))
                .chain(g.lanes.iter().map(|l| (&l.path, l.fd)))
                .map(|(path, fd)| KeptSocket {
                    path: path.clone(),
                    fd,
                    secret: g.secret,
                })
        })
        .collect()
}

/// Processes of the previous generation no new process takes over: those of groups that
/// are gone, and those beyond the new process count.
pub fn surplus_handover(
    handover: &HashMap<String, Vec<i32>>,
    groups: &[Arc<DaemonGroup>],
) -> Vec<i32> {
    let mut out = Vec::new();
    for (name, pids) in handover {
        let kept = groups
            .iter()
            .find(|g| g.spec.name == *name)
            .map_or(0, |g| g.spec.processes as usize);
        out.extend(pids.iter().skip(kept).copied());
    }
    out
}

/// Closes and removes the previous generation's sockets that no group took over.
pub fn close_previous(previous: PreviousSockets) {
    for (path, (fd, _)) in previous {
        crate::socket::close(fd);
        let _ = std::fs::remove_file(path);
    }
}

/// The previous generation's processes still `alive`, by group, each group's in the order
/// recorded (`supervisor::handover_order`).
pub fn handover_by_group(
    handover: Vec<HandedOver>,
    alive: impl Fn(i32) -> bool,
) -> HashMap<String, Vec<i32>> {
    let mut out: HashMap<String, Vec<i32>> = HashMap::new();
    for process in handover.into_iter().filter(|p| alive(p.pid)) {
        out.entry(process.group).or_default().push(process.pid);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_is_grouped_in_order_without_the_dead() {
        let handed = |group: &str, pid| HandedOver {
            group: group.to_owned(),
            pid,
            last: false,
        };
        let by_group = handover_by_group(
            vec![
                handed("a", 3),
                handed("b", 4),
                handed("a", 1),
                handed("a", 2),
            ],
            |pid| pid != 2,
        );
        assert_eq!(by_group.len(), 2);
        assert_eq!(by_group["a"], [3, 1]);
        assert_eq!(by_group["b"], [4]);
        assert!(handover_by_group(vec![handed("a", 1)], |_| false).is_empty());
    }

    #[test]
    fn sockets_are_closed_and_removed() {
        let dir = scratch("remove");
        let prefix = dir.join("wsgi").display().to_string();
        let d = definition(&["app", "processes=2", "session-affinity=route"]);
        let group = build(&d, &prefix, &mut PreviousSockets::new()).unwrap();
        let paths: Vec<PathBuf> = std::iter::once(group.socket_path.clone())
            .chain(group.lanes.iter().map(|l| l.path.clone()))
            .collect();
        assert!(paths.iter().all(|p| p.exists()));
        group.remove_sockets();
        assert!(paths.iter().all(|p| !p.exists()));

        let other = build(
            &definition(&["other"]),
            &prefix,
            &mut PreviousSockets::new(),
        )
        .unwrap();
        let previous = previous_sockets(kept_sockets(&[Arc::new(other)]));
        let left: Vec<PathBuf> = previous.keys().cloned().collect();
        close_previous(previous);
        assert!(left.iter().all(|p| !p.exists()));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn definition(args: &[&str]) -> DaemonDefinition {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        DaemonDefinition {
            spec: DaemonSpec::parse(&args).unwrap(),
            user: None,
            gid: None,
            supplementary_gids: Vec::new(),
            socket_user: None,
            script_owner: None,
            defined_at: "httpd.conf:7".to_owned(),
        }
    }

    fn words(count: usize) -> &'static [AtomicU64] {
        Box::leak((0..count).map(|_| AtomicU64::new(0)).collect())
    }

    /// `d` built at server level beside a default main server, its sockets under `prefix`.
    fn build(
        d: &DaemonDefinition,
        prefix: &str,
        previous: &mut PreviousSockets,
    ) -> Result<DaemonGroup, String> {
        let main = ServerConfig::default();
        build_group(d, place(), &main, &[&main], prefix, &parent(), previous)
    }

    fn place() -> GroupPlace {
        let control = words(1 + GroupHealth::words_for(2));
        let (recycle_flags, health) = control.split_at(1);
        GroupPlace {
            virtual_host: Some("www.example.com".to_owned()),
            health: GroupHealth::new(health),
            recycle_flags,
            control,
        }
    }

    fn me() -> Account {
        // This process's own user and group, who may own the sockets it binds.
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata("/proc/self").unwrap();
        let (uid, gid) = (me.uid(), me.gid());
        Account {
            name: "apache".to_owned(),
            uid,
            gid,
            home: "/".to_owned(),
        }
    }

    fn parent() -> ParentFacts {
        ParentFacts {
            apache_account: me(),
            apache_timeout: Duration::from_secs(60),
            max_request_head: 16 << 20,
            apache: ApacheFacts::default(),
            current_dir: "/".to_owned(),
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgi-setup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn apache_timeout_is_at_least_a_second() {
        assert_eq!(apache_timeout(300_000_000), Duration::from_secs(300));
        assert_eq!(apache_timeout(1_500), Duration::from_secs(1));
        assert_eq!(apache_timeout(0), Duration::from_secs(1));
        assert_eq!(apache_timeout(-1), Duration::from_secs(60));
    }

    #[test]
    fn short_socket_paths_pass() {
        let d = definition(&["app", "processes=3", "session-affinity=route"]);
        assert_eq!(check_socket_paths(&[&d], "/run/wsgi"), Ok(()));
        assert_eq!(check_socket_paths(&[], "/run/wsgi"), Ok(()));
    }

    #[test]
    fn a_socket_path_too_long_names_the_group_and_where_it_was_defined() {
        let d = definition(&["app"]);
        let prefix = format!("/{}", "x".repeat(MAX_SOCKET_PATH));
        let err = check_socket_paths(&[&d], &prefix).unwrap_err();
        assert!(err.starts_with("WSGIDaemonProcess 'app' (httpd.conf:7): socket path '"));
        assert!(err.ends_with(&format!(
            "would exceed {MAX_SOCKET_PATH} bytes; shorten WSGISocketPrefix"
        )));
    }

    #[test]
    fn lanes_make_the_longest_path_count() {
        // Fits without lanes, but not with the lane suffix of session affinity.
        let plain = definition(&["app", "processes=1000"]);
        let base = socket_path("/p", 9_999_999, "app").as_os_str().len();
        let prefix = format!("/{}", "x".repeat(MAX_SOCKET_PATH - base + 1));
        assert_eq!(check_socket_paths(&[&plain], &prefix), Ok(()));
        let affine = definition(&["app", "processes=1000", "session-affinity=route"]);
        assert!(check_socket_paths(&[&affine], &prefix).is_err());
    }

    #[test]
    fn removed_options_and_missing_locales_are_warned() {
        let d = definition(&["app", "lang=xx_XX.UTF-8", "locale=C.UTF-8"]);
        let warnings = definition_warnings(&d, |l| l == "C.UTF-8");
        assert_eq!(
            warnings,
            [
                "WSGI0079: WSGIDaemonProcess 'app' (httpd.conf:7): lang='xx_XX.UTF-8' is not a locale this system has (see `locale -a`); its processes run in the C locale"
            ]
        );
        assert!(definition_warnings(&d, |_| true).is_empty());
        let removed = definition(&["app", "newrelic-config-file=/etc/nr.ini"]);
        assert_eq!(
            definition_warnings(&removed, |_| true),
            [
                "WSGI1141: WSGIDaemonProcess 'app' (httpd.conf:7): newrelic-config-file= was removed in mod_wsgi 6 and has no effect; remove it"
            ]
        );
        // Without lang= and locale=, the default locale is asked for.
        let plain = definition(&["app"]);
        assert_eq!(definition_warnings(&plain, |_| false).len(), 1);
        assert!(definition_warnings(&plain, |_| true).is_empty());
    }

    #[test]
    fn socket_timeout_falls_back_to_apache_timeout() {
        let unset = definition(&["app", "socket-timeout=0"]);
        assert_eq!(
            socket_timeout(&unset.spec, Duration::from_secs(300)),
            Duration::from_secs(300)
        );
        let set = definition(&["app", "socket-timeout=5"]);
        assert_eq!(
            socket_timeout(&set.spec, Duration::from_secs(300)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn group_python_overrides_the_embedded_settings() {
        let embedded = PythonSettings {
            python_home: Some("/opt/py".to_owned()),
            python_path: vec!["/embedded".to_owned()],
            optimize: 2,
            switch_interval: Some(Duration::from_millis(5)),
            ..PythonSettings::from_config(&Default::default())
        };
        let d = definition(&["app", "threads=1", "python-path=/srv/app"]);
        let py = group_python(&d.spec, embedded.clone(), "/srv", ApacheFacts::default());
        assert_eq!(py.python_home.as_deref(), Some("/opt/py"));
        assert_eq!(py.python_path, ["/srv/app"]);
        assert_eq!(py.process_group, "app");
        assert!(!py.multithread);
        assert!(!py.multiprocess);
        assert_eq!((py.maximum_processes, py.threads_per_process), (1, 1));
        assert_eq!(py.home_on_path.as_deref(), Some("/srv"));
        assert_eq!(py.optimize, 2);
        assert_eq!(py.switch_interval, Some(Duration::from_millis(5)));

        let d = definition(&["app", "processes=1", "threads=4", "python-home=/venv"]);
        let py = group_python(&d.spec, embedded, "/", ApacheFacts::default());
        assert_eq!(py.python_home.as_deref(), Some("/venv"));
        assert!(py.python_path.is_empty());
        assert!(py.multithread);
        // processes= given, even as 1, makes the group multiprocess (as mod_wsgi).
        assert!(py.multiprocess);
    }

    #[test]
    fn built_group_binds_its_sockets_and_keeps_them_across_generations() {
        let dir = scratch("build");
        let prefix = dir.join("wsgi").display().to_string();
        let d = definition(&["app", "processes=2", "session-affinity=route"]);
        let mut previous = PreviousSockets::new();
        let group = build(&d, &prefix, &mut previous).unwrap();
        assert_eq!(group.lanes.len(), 2);
        assert!(group.socket_path.exists());
        assert!(group.lanes.iter().all(|l| l.path.exists()));
        assert_eq!(group.socket_timeout, Duration::from_secs(60));
        assert_eq!(group.virtual_host.as_deref(), Some("www.example.com"));
        assert_eq!(group.python.process_group, "app");
        assert!(group.preloads.is_empty());

        // The next generation finds every socket and the secret in the record.
        let group = Arc::new(group);
        let kept = kept_sockets(std::slice::from_ref(&group));
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|k| k.secret == group.secret));
        let mut previous = previous_sockets(kept);
        let again = build(&d, &prefix, &mut previous).unwrap();
        assert_eq!(again.secret, group.secret);
        assert_eq!(again.listener_fd, group.listener_fd);
        assert!(previous.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_socket_that_cannot_be_bound_names_the_group() {
        let d = definition(&["app"]);
        let err = build(&d, "/nonexistent-dir/wsgi", &mut PreviousSockets::new()).unwrap_err();
        assert!(
            err.starts_with("WSGIDaemonProcess 'app' (httpd.conf:7): cannot create socket '"),
            "{err}"
        );
    }

    #[test]
    fn surplus_handover_is_what_no_new_process_takes_over() {
        let dir = scratch("surplus");
        let prefix = dir.join("wsgi").display().to_string();
        let d = definition(&["app", "processes=2"]);
        let group = build(&d, &prefix, &mut PreviousSockets::new()).unwrap();
        let groups = [Arc::new(group)];
        let handover = HashMap::from([
            ("app".to_owned(), vec![10, 11, 12]),
            ("gone".to_owned(), vec![20]),
        ]);
        let mut surplus = surplus_handover(&handover, &groups);
        surplus.sort_unstable();
        assert_eq!(surplus, [12, 20]);
        assert!(surplus_handover(&HashMap::new(), &groups).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
