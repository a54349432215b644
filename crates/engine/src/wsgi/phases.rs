//! Apache's request phases in Python, as mod_wsgi runs them: `allow_access` (access),
//! `check_password` and `get_realm_hash` (authentication), `groups_for_user`
//! (authorisation) and `process_group`/`application_group`/`callable_object` (dispatch),
//! each a function of a script loaded (and reloaded) like a WSGI script, called with a
//! CGI environ. Every failure (script missing or raising, function missing, a result of
//! the wrong type) is logged with the phase, the script and the traceback, and becomes
//! `PhaseFailed`: the caller answers 500 and never lets the request through.

use crate::python::{self, Interpreter, MOD_WSGI_API_VERSION};
use mod_wsgi_wire::Environ;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyCFunction, PyDict, PyString, PyTuple};
use std::path::Path;

/// One call of a phase function.
pub struct PhaseCall<'a> {
    pub script: &'a Path,
    /// Interpreter name; "" is the main interpreter.
    pub application_group: &'a str,
    pub reload: bool,
    /// The request's CGI variables, values decoded as ISO-8859-1.
    pub environ: Environ,
}

/// The phase failed and its cause was logged: the request must end with a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseFailed;

/// What `check_password(environ, user, password)` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// True.
    Granted,
    /// A user name (str): granted, and the request's user becomes that name.
    GrantedAs(String),
    /// False.
    Denied,
    /// None.
    UnknownUser,
}

/// What a dispatch script chose; `None` keeps the configured value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dispatch {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// `check_password(environ, user, password)` (Basic authentication).
pub fn check_password(
    call: PhaseCall<'_>,
    user: &str,
    password: &str,
) -> Result<Password, PhaseFailed> {
    run(&call, "authentication", |module, environ| {
        let function = required(module, "check_password")?;
        let result = function
            .call1((environ, user, password))
            .map_err(Failure::Raised)?;
        if result.is_none() {
            return Ok(Password::UnknownUser);
        }
        if let Ok(flag) = result.cast::<PyBool>() {
            return Ok(if flag.is_true() {
                Password::Granted
            } else {
                Password::Denied
            });
        }
        if !result.is_instance_of::<PyString>() {
            return Err(wrong_type(
                &result,
                "True, False, None or a user name (str)",
            ));
        }
        // A user name is ISO-8859-1 text, as Apache keeps it, and never empty or cut.
        match text(&result)? {
            Some(name) if !name.is_empty() && !name.contains('\0') => Ok(Password::GrantedAs(name)),
            _ => Err(Failure::Wrong(
                "returned an empty user name or one with a NUL character".to_owned(),
            )),
        }
    })
}

/// `get_realm_hash(environ, user, realm)` (Digest authentication): the hex MD5 of
/// `user:realm:password`, or None for an unknown user.
pub fn get_realm_hash(
    call: PhaseCall<'_>,
    user: &str,
    realm: &str,
) -> Result<Option<String>, PhaseFailed> {
    run(&call, "authentication", |module, environ| {
        let function = required(module, "get_realm_hash")?;
        let result = function
            .call1((environ, user, realm))
            .map_err(Failure::Raised)?;
        if result.is_none() {
            return Ok(None);
        }
        let hash = text(&result)?
            .ok_or_else(|| wrong_type(&result, "None or the realm hash (str or bytes)"))?;
        if hash.is_empty() {
            return Err(Failure::Wrong("returned an empty realm hash".to_owned()));
        }
        Ok(Some(hash))
    })
}

/// `groups_for_user(environ, user)`: the names of the user's groups.
pub fn groups_for_user(call: PhaseCall<'_>, user: &str) -> Result<Vec<String>, PhaseFailed> {
    run(&call, "authorisation", |module, environ| {
        let function = required(module, "groups_for_user")?;
        let result = function.call1((environ, user)).map_err(Failure::Raised)?;
        let items = result
            .try_iter()
            .map_err(|_| wrong_type(&result, "an iterable of group names (str or bytes)"))?;
        let mut groups = Vec::new();
        for item in items {
            let item = item.map_err(Failure::Raised)?;
            let name =
                text(&item)?.ok_or_else(|| wrong_type(&item, "a group name (str or bytes)"))?;
            groups.push(name);
        }
        Ok(groups)
    })
}

/// `allow_access(environ, host)`: Some(true) allows, Some(false) refuses, None leaves
/// the decision to Apache's other access checks.
pub fn allow_access(call: PhaseCall<'_>, host: Option<&str>) -> Result<Option<bool>, PhaseFailed> {
    run(&call, "access", |module, environ| {
        let function = required(module, "allow_access")?;
        let result = function.call1((environ, host)).map_err(Failure::Raised)?;
        if result.is_none() {
            return Ok(None);
        }
        match result.cast::<PyBool>() {
            Ok(flag) => Ok(Some(flag.is_true())),
            Err(_) => Err(wrong_type(&result, "True, False or None")),
        }
    })
}

/// The dispatch script's `process_group(environ)`, `application_group(environ)` and
/// `callable_object(environ)`, each optional, each None to keep the configured value.
pub fn dispatch(mut call: PhaseCall<'_>) -> Result<Dispatch, PhaseFailed> {
    call.environ.remove("mod_wsgi.callable_object");
    run(&call, "dispatch", |module, environ| {
        let choose = |name: &str| -> Result<Option<String>, Failure> {
            let Ok(function) = module.getattr(name) else {
                return Ok(None);
            };
            let result = function
                .call1((environ.clone(),))
                .map_err(Failure::Raised)?;
            if result.is_none() {
                return Ok(None);
            }
            let value = text(&result)?.ok_or_else(|| {
                wrong_type(
                    &result,
                    &format!("None or a name (str or bytes) from {name}()"),
                )
            })?;
            Ok(Some(value))
        };
        Ok(Dispatch {
            process_group: choose("process_group")?,
            application_group: choose("application_group")?,
            callable_object: choose("callable_object")?,
        })
    })
}

enum Failure {
    Raised(PyErr),
    Wrong(String),
}

fn required<'py>(module: &Bound<'py, PyAny>, name: &str) -> Result<Bound<'py, PyAny>, Failure> {
    module
        .getattr(name)
        .map_err(|_| Failure::Wrong(format!("does not define {name}()")))
}

fn wrong_type(value: &Bound<'_, PyAny>, expected: &str) -> Failure {
    let kind = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    Failure::Wrong(format!("returned a {kind}; expected {expected}"))
}

/// A str that ISO-8859-1 can carry, or bytes decoded as ISO-8859-1; None for other types.
fn text(value: &Bound<'_, PyAny>) -> Result<Option<String>, Failure> {
    if let Ok(s) = value.cast::<PyString>() {
        let s = s.to_str().map_err(Failure::Raised)?;
        if s.chars().any(|c| c as u32 > 0xFF) {
            return Err(Failure::Wrong(format!(
                "returned {s:?}, which ISO-8859-1 cannot carry"
            )));
        }
        return Ok(Some(s.to_owned()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().iter().map(|&c| c as char).collect()));
    }
    Ok(None)
}

/// Loads the script in its interpreter, builds the environ and runs `f`; logs failures.
fn run<T>(
    call: &PhaseCall<'_>,
    phase: &str,
    f: impl FnOnce(&Bound<'_, PyAny>, Bound<'_, PyDict>) -> Result<T, Failure>,
) -> Result<T, PhaseFailed> {
    let script = call.script.display().to_string();
    let fail = |detail: &str| {
        tracing::error!("WSGI1150: {phase} script '{script}' failed: {detail}");
        PhaseFailed
    };
    let mtime = crate::python::script_mtime(call.script);
    let outcome = python::with_interpreter(call.application_group, |py, interp| {
        let module = match python::load_module(py, interp, call.script, mtime, call.reload, false) {
            Ok(module) => module,
            Err(e) => return Err(fail(&e.to_string())),
        };
        let environ = match phase_environ(py, interp, call) {
            Ok(environ) => environ,
            Err(e) => return Err(fail(&python::format_exception(py, &e))),
        };
        let errors = environ.get_item("wsgi.errors").ok().flatten();
        let result = f(&module, environ);
        if let Some(errors) = errors {
            let _ = errors.call_method0("flush");
        }
        result.map_err(|failure| match failure {
            Failure::Raised(e) => fail(&format!("it raised\n{}", python::format_exception(py, &e))),
            Failure::Wrong(what) => fail(&format!("it {what}")),
        })
    });
    match outcome {
        Ok(result) => result,
        Err(e) => Err(fail(&e.to_string())),
    }
}

/// The environ a phase function sees: the CGI variables, `wsgi.errors` (the error log),
/// the versions, and the groups as mod_wsgi gives them to these scripts.
fn phase_environ<'py>(
    py: Python<'py>,
    interp: &Interpreter,
    call: &PhaseCall<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    for (key, value) in call.environ.iter() {
        env.set_item(key, value)?;
    }
    let emit = PyCFunction::new_closure(
        py,
        Some(c"emit"),
        None,
        |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let (line,): (String,) = args.extract()?;
            tracing::error!("{line}");
            Ok(())
        },
    )?;
    let errors = interp
        .shim
        .log_stream_class
        .bind(py)
        .call1((emit, "wsgi.errors"))?;
    env.set_item("wsgi.errors", errors)?;
    let (a, b, c) = MOD_WSGI_API_VERSION;
    env.set_item("mod_wsgi.version", PyTuple::new(py, [a, b, c])?)?;
    let (a, b, c) = python::apache_version();
    env.set_item("apache.version", PyTuple::new(py, [a, b, c])?)?;
    env.set_item("mod_wsgi.process_group", "")?;
    env.set_item("mod_wsgi.application_group", call.application_group)?;
    Ok(env)
}

impl Dispatch {
    /// `dir` with what the script chose in place of the configured values; a choice that
    /// is not a valid value of its directive is the error.
    pub fn apply(
        self,
        dir: &mod_wsgi_config::DirConfig,
    ) -> Result<mod_wsgi_config::DirConfig, mod_wsgi_config::ConfigError> {
        use mod_wsgi_config::{ApplicationGroup, CallableObject, ProcessGroup};
        let mut dir = dir.clone();
        if let Some(group) = self.process_group {
            dir.process_group = Some(ProcessGroup::parse(&group)?);
        }
        if let Some(group) = self.application_group {
            dir.application_group = Some(ApplicationGroup::parse(&group)?);
        }
        if let Some(callable) = self.callable_object {
            dir.callable_object = Some(CallableObject::parse(&callable)?);
        }
        Ok(dir)
    }
}

/// The message that logs a client (`host`, if Apache knows it) refused by WSGIAccessScript
/// `script` for `uri`.
pub fn access_refusal(host: Option<&str>, script: &str, uri: &str) -> String {
    format!(
        "WSGI0057: client {} denied by WSGIAccessScript {script} for '{uri}'",
        host.unwrap_or("-")
    )
}

/// `Require wsgi-group` (`require_line`) for `user`, a member of `groups`: None when one
/// of the groups required is among them, else the message that logs the refusal of `uri`.
pub fn group_refusal(
    user: &str,
    uri: &str,
    require_line: &str,
    groups: &[String],
) -> Option<String> {
    let required = mod_wsgi_config::split_words(require_line);
    if required.iter().any(|name| groups.contains(name)) {
        return None;
    }
    // mod_wsgi's ids: 0059 for no group at all, 0060 for none of those required.
    let (id, why) = if groups.is_empty() {
        ("0059", "is not a member of any group")
    } else {
        ("0060", "is in none of the groups required")
    };
    Some(format!(
        "WSGI{id}: user '{user}' {why} for '{uri}' (Require wsgi-group {})",
        required.join(" ")
    ))
}

#[cfg(test)]
mod decision_tests {
    use super::*;
    use crate::python::script_mtime;
    use mod_wsgi_config::{ApplicationGroup, CallableObject, DirConfig, ProcessGroup};

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn script_mtime_is_seconds_since_the_epoch_or_zero() {
        let path = std::env::temp_dir().join(format!("wsgi-mtime-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mtime = script_mtime(&path);
        assert!(mtime > 0.0 && (now - mtime).abs() < 60.0, "{mtime} {now}");
        let _ = std::fs::remove_file(&path);
        assert_eq!(script_mtime(&path), 0.0);
    }

    #[test]
    fn access_refusals_name_the_client_or_a_dash() {
        assert_eq!(
            access_refusal(Some("10.0.0.1"), "/srv/access.py", "/x"),
            "WSGI0057: client 10.0.0.1 denied by WSGIAccessScript /srv/access.py for '/x'"
        );
        assert_eq!(
            access_refusal(None, "/a.py", "/"),
            "WSGI0057: client - denied by WSGIAccessScript /a.py for '/'"
        );
    }

    #[test]
    fn one_required_group_is_enough() {
        assert_eq!(
            group_refusal("ann", "/x", "admin staff", &groups(&["staff"])),
            None
        );
        assert_eq!(
            group_refusal("ann", "/x", "\"admin\"", &groups(&["admin"])),
            None
        );
    }

    #[test]
    fn refusals_tell_no_group_from_other_groups() {
        assert_eq!(
            group_refusal("ann", "/x", "admin  staff", &[]).as_deref(),
            Some(
                "WSGI0059: user 'ann' is not a member of any group for '/x' (Require wsgi-group admin staff)"
            )
        );
        assert_eq!(
            group_refusal("ann", "/x", "admin", &groups(&["users"])).as_deref(),
            Some(
                "WSGI0060: user 'ann' is in none of the groups required for '/x' (Require wsgi-group admin)"
            )
        );
        // An empty Require line lets nobody through.
        assert!(group_refusal("ann", "/x", "", &groups(&["users"])).is_some());
    }

    #[test]
    fn dispatch_keeps_what_the_script_did_not_choose() {
        let dir = DirConfig {
            process_group: Some(ProcessGroup::parse("configured").unwrap()),
            application_group: Some(ApplicationGroup::parse("configured-app").unwrap()),
            ..DirConfig::default()
        };
        assert_eq!(Dispatch::default().apply(&dir).unwrap(), dir);
        let chosen = Dispatch {
            process_group: Some("chosen".to_owned()),
            application_group: None,
            callable_object: Some("app".to_owned()),
        }
        .apply(&dir)
        .unwrap();
        assert_eq!(
            chosen.process_group,
            Some(ProcessGroup::parse("chosen").unwrap())
        );
        assert_eq!(chosen.application_group, dir.application_group);
        assert_eq!(
            chosen.callable_object,
            Some(CallableObject::parse("app").unwrap())
        );
    }

    #[test]
    fn an_invalid_dispatch_choice_is_an_error() {
        let bad = Dispatch {
            process_group: Some("%{BOGUS}".to_owned()),
            ..Dispatch::default()
        };
        assert!(bad.apply(&DirConfig::default()).is_err());
    }
}
