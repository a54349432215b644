//! Managed services (--service-script NAME SCRIPT): each a daemon group of its own,
//! `service:NAME`, with no request threads (threads=0), running SCRIPT at startup, with
//! its own user, group and error log when asked.

use crate::cli::ServerArgs;
use crate::conf::{Plan, opt, p};
use crate::features::{pairs, q};
use crate::locate;
use crate::logs;
use crate::users;
use std::path::{Path, PathBuf};

/// A managed service: a daemon process without request threads running one script.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub script: PathBuf,
    pub run_as: Option<(String, String)>,
    /// ErrorLog of its own (a file or a rotatelogs pipe).
    pub error_log: Option<String>,
}

/// --service-script NAME SCRIPT with its --service-user/-group/-log-file.
pub fn resolve(
    args: &ServerArgs,
    run_as: &Option<(String, String)>,
    log_targets: &logs::LogTargets,
) -> Result<Vec<Service>, String> {
    let r = &args.runtime;
    let scripts = pairs(&r.service_script);
    let named = |list: &[String], name: &str| {
        pairs(list)
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    };
    for (option, list) in [
        ("--service-user", &r.service_user),
        ("--service-group", &r.service_group),
        ("--service-log-file", &r.service_log_file),
    ] {
        if let Some((name, _)) = pairs(list)
            .iter()
            .find(|(n, _)| !scripts.iter().any(|(s, _)| s == n))
        {
            return Err(format!("{option} {name}: no --service-script {name}"));
        }
    }
    let mut services = Vec::new();
    for (name, script) in scripts {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("--service-script '{name}': a name without spaces"));
        }
        let path = Path::new(&script);
        if !path.is_file() {
            return Err(format!("--service-script {name} {script}: no such file"));
        }
        let user = named(&r.service_user, &name);
        let group = named(&r.service_group, &name);
        let service_run_as = if user.is_none() && group.is_none() {
            run_as.clone()
        } else {
            users::run_as(
                user.as_deref().or(args.user.as_deref()),
                group.as_deref().or(args.group.as_deref()),
            )?
        };
        let error_log = named(&r.service_log_file, &name).map(|file| log_targets.file(&file));
        services.retain(|s: &Service| s.name != name);
        services.push(Service {
            name,
            script: locate::absolute(path),
            run_as: service_run_as,
            error_log,
        });
    }
    Ok(services)
}

/// A managed service's daemon group (threads=0) and the script it runs.
pub fn render(plan: &Plan, service: &Service) -> String {
    let group = format!("service:{}", service.name);
    let mut line = format!(
        "WSGIDaemonProcess {} display-name=%{{GROUP}} threads=0",
        q(&group)
    );
    let mut add = |k: &str, v: String| {
        line.push(' ');
        line.push_str(&opt(k, v));
    };
    if let Some((user, grp)) = &service.run_as {
        add("user", user.clone());
        add("group", grp.clone());
    }
    for (key, value) in crate::conf::python_options(plan) {
        add(key, value);
    }
    add("lang", plan.locale.clone());
    add("locale", plan.locale.clone());
    let body = format!(
        "{line}\nWSGIImportScript {} {} {}\n",
        p(&service.script),
        opt("process-group", &group),
        opt("application-group", "%{GLOBAL}")
    );
    match &service.error_log {
        // As mod_wsgi-express: a group of its own host, which has the log.
        Some(log) => format!(
            "<VirtualHost *:{}>\n    ServerName {}\n    ErrorLog {}\n{body}</VirtualHost>\n",
            plan.port,
            q(format!("{}.service.invalid", service.name)),
            q(log)
        ),
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_runs_in_a_daemon_without_request_threads() {
        let mut pl = crate::conf::tests::plan();
        pl.services = vec![Service {
            name: "tasks".into(),
            script: "/app/tasks.py".into(),
            run_as: None,
            error_log: Some("/logs/tasks.log".into()),
        }];
        let c = crate::conf::render(&pl);
        assert!(
            c.contains(
                "WSGIDaemonProcess \"service:tasks\" display-name=%{GROUP} threads=0 home=/app"
            ),
            "{c}"
        );
        assert!(c.contains("WSGIImportScript \"/app/tasks.py\" process-group=service:tasks application-group=%{GLOBAL}\n"), "{c}");
        assert!(c.contains("<VirtualHost _default_:8080>\n</VirtualHost>\n<VirtualHost *:8080>\n    ServerName \"tasks.service.invalid\"\n    ErrorLog \"/logs/tasks.log\"\n"), "{c}");
    }
}
