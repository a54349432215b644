//! Apache's request phases in Python (`wsgi::phases`), in-process: what
//! check_password, get_realm_hash, groups_for_user, allow_access and the dispatch
//! functions return becomes the decision; any failure (the script raising, a function
//! missing, a result of the wrong type) is `PhaseFailed`, never access granted.

mod common;

use common::{python, script};
use mod_wsgi_engine::wsgi::phases::{self, Dispatch, Password, PhaseCall, PhaseFailed};
use mod_wsgi_wire::Environ;
use std::path::Path;

const AUTH: &str = r#"
USERS = {"ann": "secret", "bob": "hunter2"}

def check_password(environ, user, password):
    if user == "raise":
        raise RuntimeError("directory server down")
    if user == "wrong-type":
        return 1
    if user == "alias":
        return "ann"
    if user == "alias-outside-latin-1":
        return "\u0436"
    if user == "alias-empty":
        return ""
    if user not in USERS:
        return None
    return USERS[user] == password

def get_realm_hash(environ, user, realm):
    import hashlib
    if user not in USERS:
        return None
    text = "%s:%s:%s" % (user, realm, USERS[user])
    return hashlib.md5(text.encode()).hexdigest()

def groups_for_user(environ, user):
    if user == "ann":
        return ["staff", b"ops"]
    return iter([])

def allow_access(environ, host):
    addr = environ["REMOTE_ADDR"]
    if addr == "10.0.0.1":
        return True
    if addr == "10.0.0.2":
        return False
    if addr == "10.0.0.3":
        return "yes"
    return None
"#;

fn call<'a>(path: &'a Path, group: &'a str, remote: &str) -> PhaseCall<'a> {
    let mut environ = Environ::new();
    environ.push("REQUEST_METHOD", "GET");
    environ.push("REMOTE_ADDR", remote);
    PhaseCall {
        script: path,
        application_group: group,
        reload: false,
        environ,
    }
}

fn auth() -> std::path::PathBuf {
    python();
    script("auth.wsgi", AUTH)
}

#[test]
fn check_password_grants_denies_or_does_not_know_the_user() {
    let path = auth();
    let check = |user: &str, password: &str| {
        phases::check_password(call(&path, "", "127.0.0.1"), user, password)
    };
    assert_eq!(check("ann", "secret"), Ok(Password::Granted));
    assert_eq!(check("ann", "guess"), Ok(Password::Denied));
    assert_eq!(check("carol", "x"), Ok(Password::UnknownUser));
    assert_eq!(
        check("alias", "x"),
        Ok(Password::GrantedAs("ann".to_owned()))
    );
    assert_eq!(
        check("raise", "x"),
        Err(PhaseFailed),
        "a raising check denies"
    );
    assert_eq!(check("wrong-type", "x"), Err(PhaseFailed));
    assert_eq!(check("alias-outside-latin-1", "x"), Err(PhaseFailed));
    assert_eq!(check("alias-empty", "x"), Err(PhaseFailed));
}

#[test]
fn get_realm_hash_answers_the_digest_of_a_known_user() {
    let path = auth();
    let hash = |user: &str| phases::get_realm_hash(call(&path, "", "127.0.0.1"), user, "Site");
    // `echo -n bob:Site:hunter2 | md5sum`
    let expected = "fe201a13e79a98d701b21232254111e7".to_owned();
    assert_eq!(hash("bob"), Ok(Some(expected)));
    assert_eq!(hash("carol"), Ok(None));
}

#[test]
fn groups_for_user_takes_str_and_bytes_names() {
    let path = auth();
    let groups = |user: &str| phases::groups_for_user(call(&path, "authz", "127.0.0.1"), user);
    assert_eq!(
        groups("ann"),
        Ok(vec!["staff".to_owned(), "ops".to_owned()])
    );
    assert_eq!(groups("bob"), Ok(vec![]));
}

#[test]
fn allow_access_allows_refuses_or_defers_and_anything_else_fails() {
    let path = auth();
    let access = |remote: &str| phases::allow_access(call(&path, "", remote), Some("client"));
    assert_eq!(access("10.0.0.1"), Ok(Some(true)));
    assert_eq!(access("10.0.0.2"), Ok(Some(false)));
    assert_eq!(access("10.0.0.9"), Ok(None));
    assert_eq!(
        access("10.0.0.3"),
        Err(PhaseFailed),
        "a str is not a decision"
    );
}

#[test]
fn a_phase_script_that_cannot_be_used_fails_the_phase() {
    python();
    let missing = common::scratch().join("no-such-auth.wsgi");
    let none = script("no_functions.wsgi", "VALUE = 1\n");
    let broken = script("broken_auth.wsgi", "raise ImportError('no ldap module')\n");
    for path in [&missing, &none, &broken] {
        let result = phases::check_password(call(path, "", "127.0.0.1"), "ann", "secret");
        assert_eq!(result, Err(PhaseFailed), "{}", path.display());
    }
}

#[test]
fn dispatch_chooses_groups_and_callable_or_keeps_the_configured_ones() {
    python();
    let path = script(
        "dispatch.wsgi",
        r#"
def process_group(environ):
    return "tenant-" + environ["REMOTE_ADDR"].rsplit(".", 1)[1]

def application_group(environ):
    return None

def callable_object(environ):
    return b"app"
"#,
    );
    let chosen = phases::dispatch(call(&path, "", "10.0.0.7"));
    assert_eq!(
        chosen,
        Ok(Dispatch {
            process_group: Some("tenant-7".to_owned()),
            application_group: None,
            callable_object: Some("app".to_owned()),
        })
    );
    let empty = script("dispatch_empty.wsgi", "");
    assert_eq!(
        phases::dispatch(call(&empty, "", "10.0.0.7")),
        Ok(Dispatch::default()),
        "no functions: every configured value stays"
    );
}
