//! Django's own recipe, "Authenticating against Django's user database from Apache",
//! end to end: a project made by `django-admin startproject`, its users and groups
//! created with `manage.py`, and a static directory Apache serves protected by
//! `django.contrib.auth.handlers.modwsgi` (check_password, groups_for_user) through
//! WSGIAuthUserScript and WSGIAuthGroupScript, beside the project served by
//! WSGIScriptAlias in a daemon group.

mod common;
use common::{Apache, Mpm, Scratch};
use std::process::Command;

/// The Python the module links (the project's Django comes with it).
const PYTHON: &str = env!("PYO3_PYTHON");

fn run(dir: &str, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn basic(user: &str, password: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{password}").as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 runs");
    format!("Basic {}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_django_user_database_protects_a_static_directory() {
    let scratch = Scratch::new("django-auth");
    let root = scratch.dir.display().to_string();
    run(&root, PYTHON, &["-m", "django", "startproject", "mysite"]);
    let project = scratch.path("mysite");
    // The database lives where www-data can read and write it (Django may rehash a
    // password on login).
    std::fs::create_dir_all(scratch.path("db")).unwrap();
    let settings = scratch.path("mysite/mysite/settings.py");
    let text = std::fs::read_to_string(&settings).unwrap().replace(
        "BASE_DIR / 'db.sqlite3'",
        &format!("'{}'", scratch.path("db/db.sqlite3")),
    );
    std::fs::write(&settings, text + "\nALLOWED_HOSTS = ['*']\n").unwrap();
    run(&project, PYTHON, &["manage.py", "migrate", "-v0"]);
    run(
        &project,
        PYTHON,
        &[
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User, Group\n\
             agents = Group.objects.create(name='secret-agents')\n\
             User.objects.create_user('bond', password='martini').groups.add(agents)\n\
             User.objects.create_user('q', password='gadgets')\n\
             User.objects.create_user('gone', password='x', is_active=False)",
        ],
    );
    run(&root, "chmod", &["-R", "a+rwX", &root]);
    // The recipe's wsgi.py: the project's application plus the two auth functions.
    let wsgi = scratch.path("mysite/mysite/wsgi.py");
    let text = std::fs::read_to_string(&wsgi).unwrap();
    std::fs::write(
        &wsgi,
        text + "\nfrom django.contrib.auth.handlers.modwsgi import check_password, groups_for_user\n",
    )
    .unwrap();
    scratch.write("secret/plans.txt", "the plans");
    scratch.write("agents/list.txt", "007");

    let mods = common::apache_modules_dir().display().to_string();
    let conf = format!(
        "LoadModule alias_module {mods}/mod_alias.so
LoadModule authn_core_module {mods}/mod_authn_core.so
LoadModule auth_basic_module {mods}/mod_auth_basic.so
LoadModule authz_user_module {mods}/mod_authz_user.so
WSGIDaemonProcess mysite python-path={project} processes=1 threads=2
WSGIScriptAlias /site {project}/mysite/wsgi.py process-group=mysite application-group=%{{GLOBAL}}
WSGIPythonPath {project}
<Directory {project}/mysite>
  Require all granted
</Directory>
Alias /secret {root}/secret
Alias /agents {root}/agents
<Directory {root}/secret>
  AuthType Basic
  AuthName \"Top Secret\"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {project}/mysite/wsgi.py
  Require valid-user
</Directory>
<Directory {root}/agents>
  AuthType Basic
  AuthName \"Agents\"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {project}/mysite/wsgi.py
  WSGIAuthGroupScript {project}/mysite/wsgi.py
  Require wsgi-group secret-agents
</Directory>
"
    );
    let mut apache = Apache::start_in(Mpm::Event, scratch, &conf);
    for allowed in [
        "AH01617", "AH01618", "AH01631", "WSGI0059", "WSGI0060", "AH01797",
    ] {
        apache.allow_log(allowed);
    }
    let get = |path: &str, user: &str, password: &str| {
        let r = apache.request(
            "GET",
            path,
            &[("Authorization", &basic(user, password))],
            b"",
        );
        (r.status, r.text())
    };
    assert_eq!(apache.get("/secret/plans.txt").status, 401);
    assert_eq!(
        get("/secret/plans.txt", "bond", "martini"),
        (200, "the plans".to_owned())
    );
    assert_eq!(get("/secret/plans.txt", "q", "gadgets").0, 200);
    assert_eq!(
        get("/secret/plans.txt", "bond", "shaken").0,
        401,
        "wrong password"
    );
    assert_eq!(
        get("/secret/plans.txt", "blofeld", "cat").0,
        401,
        "no such user"
    );
    assert_eq!(
        get("/secret/plans.txt", "gone", "x").0,
        401,
        "inactive user"
    );
    assert_eq!(
        get("/agents/list.txt", "bond", "martini"),
        (200, "007".to_owned())
    );
    assert_eq!(
        get("/agents/list.txt", "q", "gadgets").0,
        401,
        "not in the group"
    );
    // The project itself still serves, from its daemon.
    let r = apache.get("/site/admin/login/");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert!(
        r.text().contains("csrfmiddlewaretoken"),
        "Django's login form"
    );
}
