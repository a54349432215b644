//! The configuration users copy: `apache-conf/` fragments and README snippets, run in a
//! real Apache with their paths pointed at a scratch application.

mod common;

use common::{Apache, Mpm, apache_modules_dir};
use std::path::Path;

const APP: &str = "import os\ndef application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('%s %s' % (environ['mod_wsgi.process_group'], os.getcwd())).encode()]\n";

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// APP that also notes, next to itself, each process group that loaded it.
const NOTING_APP: &str = "import mod_wsgi, os\nopen(os.path.join(os.path.dirname(__file__), 'loaded-' + mod_wsgi.process_group), 'w').close()\n";

#[test]
fn daemon_conf_routes_admin_to_its_own_group() {
    let conf = repo_file("apache-conf/daemon.conf").replace("/srv/myapp", "{root}/app");
    let app = format!("{NOTING_APP}{APP}");
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", &app)]);
    let app_dir = apache.scratch.path("app");
    // Both groups load the script at start, before any request.
    for group in ["myapp", "myapp-admin"] {
        common::wait_for_file(
            &Path::new(&app_dir).join(format!("loaded-{group}")),
            "the preload",
        );
    }
    assert_eq!(apache.get_ok("/"), format!("myapp {app_dir}"));
    assert_eq!(apache.get_ok("/shop/cart"), format!("myapp {app_dir}"));
    // What the fragment's comments promise: /admin in the single-threaded group.
    assert_eq!(apache.get_ok("/admin"), format!("myapp-admin {app_dir}"));
    assert_eq!(
        apache.get_ok("/admin/users"),
        format!("myapp-admin {app_dir}")
    );
    apache.stop();
}

/// The README's `<Location /metrics>` block.
fn readme_metrics_snippet() -> String {
    let readme = repo_file("README.md");
    let start = readme
        .find("<Location /metrics>")
        .expect("README has a <Location /metrics> snippet");
    let end = start + readme[start..].find("</Location>").unwrap() + "</Location>".len();
    readme[start..end].to_owned()
}

#[test]
fn readme_metrics_snippet_serves_in_a_debian_apache() {
    // Debian's apache2 enables authz_host (Require local/ip/host) by default.
    let conf = format!(
        "LoadModule authz_host_module {}/mod_authz_host.so\nWSGIScriptAlias / {{root}}/app/app.wsgi\n{}\n",
        apache_modules_dir().display(),
        readme_metrics_snippet()
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)]);
    apache.get_ok("/");
    let metrics = apache.get_ok("/metrics");
    assert!(
        metrics.contains("# TYPE mod_wsgi_requests_total counter"),
        "{metrics}"
    );
    apache.stop();
}
