//! scripts/install-deps.sh against stand-ins for dpkg-query, apt-get, service and
//! systemctl that record what it asks for (nothing is installed or stopped for real).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fake system: `installed-PKG` and `running-SERVICE` marker files, and a log of the
/// apt-get and stop commands run.
struct FakeSystem {
    dir: PathBuf,
}

const DPKG_QUERY: &str = r#"#!/bin/sh
for p; do :; done
[ -e "$FAKE/installed-$p" ] && printf 'install ok installed'
exit 0
"#;

/// apt-get: installs by marking, and starts a service on install as Debian's postinst
/// scripts do.
const APT_GET: &str = r#"#!/bin/sh
echo "apt-get $*" >> "$FAKE/log"
[ "$1" = install ] || exit 0
for p; do
    case "$p" in -*|install) continue ;; esac
    touch "$FAKE/installed-$p"
    case "$p" in apache2|redis-server) touch "$FAKE/running-$p" ;; esac
done
"#;

const SERVICE: &str = r#"#!/bin/sh
case "$2" in
    status) [ -e "$FAKE/running-$1" ] ;;
    stop) echo "stop $1" >> "$FAKE/log"; rm -f "$FAKE/running-$1" ;;
    *) exit 1 ;;
esac
"#;

const SYSTEMCTL: &str = r#"#!/bin/sh
case "$1" in
    is-active) [ -e "$FAKE/running-$3" ] ;;
    stop) echo "stop $2" >> "$FAKE/log"; rm -f "$FAKE/running-$2" ;;
    *) exit 1 ;;
esac
"#;

impl FakeSystem {
    fn new(label: &str) -> FakeSystem {
        let dir = std::env::temp_dir().join(format!(
            "mod_wsgi_rs-install-deps-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for (name, text) in [
            ("dpkg-query", DPKG_QUERY),
            ("apt-get", APT_GET),
            ("service", SERVICE),
            ("systemctl", SYSTEMCTL),
        ] {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeSystem { dir }
    }

    fn mark(&self, what: &str) {
        std::fs::write(self.dir.join(what), "").unwrap();
    }

    fn has(&self, what: &str) -> bool {
        self.dir.join(what).exists()
    }

    /// Runs the script, which must succeed; returns the commands it ran.
    fn run(&self, args: &[&str]) -> Vec<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-deps.sh");
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg(script)
            .args(args)
            .env("PATH", path)
            .env("FAKE", &self.dir)
            .output()
            .unwrap();
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let _ = std::fs::remove_file(self.dir.join("log"));
        assert!(
            out.status.success(),
            "install-deps.sh {args:?}: {out:?}\n{log}"
        );
        log.lines().map(str::to_owned).collect()
    }
}

impl Drop for FakeSystem {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| l.strip_prefix("apt-get install "))
        .flat_map(|l| l.split(' ').filter(|w| !w.starts_with('-')))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_build_install_leaves_out_test_packages_and_stops_the_apache_it_started() {
    let fake = FakeSystem::new("build");
    let log = fake.run(&[]);
    let packages = installed(&log);
    for p in ["apache2", "apache2-dev", "python3-dev", "libclang-dev"] {
        assert!(
            packages.iter().any(|x| x == p),
            "{p} not installed: {log:?}"
        );
    }
    for p in [
        "redis-server",
        "wrk",
        "libapache2-mod-wsgi-py3",
        "python3-flask",
    ] {
        assert!(!packages.iter().any(|x| x == p), "{p} installed: {log:?}");
    }
    assert!(log.contains(&"stop apache2".to_owned()), "{log:?}");
    assert!(!fake.has("running-apache2"));

    // Everything there: nothing to do, nothing run.
    let log = fake.run(&[]);
    assert!(log.is_empty(), "{log:?}");
}

#[test]
fn a_service_running_before_the_install_keeps_running() {
    let fake = FakeSystem::new("running");
    for p in ["apache2", "apache2-dev", "libclang-dev"] {
        fake.mark(&format!("installed-{p}"));
    }
    fake.mark("running-apache2");
    let log = fake.run(&["--test"]);
    let packages = installed(&log);
    assert!(packages.contains(&"python3-dev".to_owned()), "{log:?}");
    assert!(packages.contains(&"redis-server".to_owned()), "{log:?}");
    assert!(packages.contains(&"wrk".to_owned()), "{log:?}");
    assert!(!log.contains(&"stop apache2".to_owned()), "{log:?}");
    assert!(
        fake.has("running-apache2"),
        "the user's apache2 was stopped"
    );
    // redis-server was started by its installation: stopped again.
    assert!(log.contains(&"stop redis-server".to_owned()), "{log:?}");
    assert!(!fake.has("running-redis-server"));
}
