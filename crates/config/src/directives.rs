//! The directive table: each directive's name, where it may appear, its arity and usage
//! text, and the pure function that applies its arguments to the per-directory or
//! per-server configuration. The server reading the configuration splits the arguments
//! (`split_words`), checks scope and arity, and reports errors with file and line.

use crate::server::{
    AliasMatcher, DaemonDefinition, HandlerScript, RegexHandle, ScriptAlias, ScriptOwner,
    ServerConfig, StoreDefinition,
};
use crate::{
    AliasOptions, ApplicationGroup, CallableObject, ConfigError, DaemonSpec, DirConfig, HashSeed,
    HookScript, ImportScript, IpNet, MapHeadToGet, ProcessGroup, ProxyHeader, SharedStoreSpec,
    parse_on_off, parse_optimize,
};
use mod_wsgi_os::identity::{self, Account};
use std::ffi::CStr;

/// Whether Python `version` (`major.minor`) can give sub-interpreters their own GIL.
fn per_interpreter_gil(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (3, 12)
}

/// Where a directive may appear.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Main server only, outside `<VirtualHost>`.
    Global,
    /// Server or virtual host.
    Server,
    /// Server, virtual host and `<Directory>`/`<Location>`/`<Files>`.
    Directory,
    /// As Directory, plus `.htaccess` with `AllowOverride FileInfo`.
    DirectoryHtaccess,
    /// Only `<Directory>`/`<Location>`/`<Files>` and `.htaccess` with `AllowOverride
    /// AuthConfig`, as Apache's own Auth* directives (not server or virtual host level).
    AuthConfig,
}

type DirApply = fn(&mut DirConfig, &[String]) -> Result<(), ConfigError>;
type ServerApply = fn(&mut ServerConfig, &[String], &CmdContext<'_>) -> Result<(), ConfigError>;

#[derive(Clone, Copy)]
pub enum Apply {
    Dir(DirApply),
    Server(ServerApply),
    /// Server-level outside sections, per-directory inside `<Directory>`/`<Location>`/
    /// `<Files>` (as mod_wsgi keeps WSGIHandlerScript in both).
    ServerOrDir(ServerApply, DirApply),
}

pub struct Directive {
    pub name: &'static CStr,
    pub scope: Scope,
    pub min_args: usize,
    pub max_args: usize,
    pub usage: &'static CStr,
    pub apply: Apply,
}

impl Directive {
    /// The arguments of one use of the directive, split as mod_wsgi does (Apache's
    /// quoting, plus quoted option values: name='a b'), or the error for a wrong number.
    pub fn arguments(&self, text: &str) -> Result<Vec<String>, String> {
        let argv = crate::split_words(text);
        if argv.len() < self.min_args || argv.len() > self.max_args {
            let label = self.name.to_string_lossy();
            let usage = self.usage.to_string_lossy();
            return Err(format!(
                "{label}: wrong number of arguments; usage: {label} {usage}"
            ));
        }
        Ok(argv)
    }

    /// Applies the directive inside `<WSGIInterpreterOptions>`: it sets the block the
    /// opening tag added last to `config`, not the server. The capability directives
    /// (WSGIPerInterpreterGIL, WSGIFreeThreading) also say, once, what they can do with
    /// this Python (`python_version`, `python_free_threaded`).
    pub fn apply_in_interpreter_options(
        &self,
        config: &mut ServerConfig,
        argv: &[String],
        python_version: &'static str,
        python_free_threaded: bool,
    ) -> Result<(), String> {
        let name = self.name.to_string_lossy();
        if let Apply::Server(apply) = self.apply
            && (name == "WSGIPerInterpreterGIL" || name == "WSGIFreeThreading")
        {
            let compile_regex = |_: &str| None;
            let _ = apply(
                &mut ServerConfig::default(),
                argv,
                &CmdContext {
                    location: "<WSGIInterpreterOptions>".to_owned(),
                    directive: name.to_string(),
                    compile_regex: &compile_regex,
                    python_version,
                    python_free_threaded,
                },
            );
        }
        let Some(block) = config.python.interpreter_options.last_mut() else {
            return Err("<WSGIInterpreterOptions>: no open section".to_owned());
        };
        block.apply(&name, argv).map_err(|e| e.to_string())
    }
}

/// What a server-scope setter needs from the server reading the configuration.
pub struct CmdContext<'a> {
    /// "file:line" of the directive being read.
    pub location: String,
    /// The directive's name.
    pub directive: String,
    /// Compiles a WSGIScriptAliasMatch pattern; None if it does not compile.
    pub compile_regex: &'a dyn Fn(&str) -> Option<RegexHandle>,
    /// The Python the module links: `major.minor`, and whether it is free-threaded.
    pub python_version: &'static str,
    pub python_free_threaded: bool,
}

const MANY: usize = usize::MAX;

macro_rules! directive {
    ($name:literal, $scope:ident, $min:expr, $max:expr, $apply:expr, $usage:literal) => {
        Directive {
            name: $name,
            scope: Scope::$scope,
            min_args: $min,
            max_args: $max,
            usage: $usage,
            apply: $apply,
        }
    };
}

fn flag(name: &'static str, args: &[String]) -> Result<bool, ConfigError> {
    parse_on_off(name, &args[0])
}

/// Things the configuration says that Apache's error log should hear once the server
/// starts (logging is not set up while the configuration is read): (is a warning, text).
static NOTICES: std::sync::Mutex<Vec<(bool, String)>> = std::sync::Mutex::new(Vec::new());

fn notice(warning: bool, text: String) {
    NOTICES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((warning, text));
}

/// Takes the notices of this configuration pass (post_config logs them).
pub fn take_notices() -> Vec<(bool, String)> {
    std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|p| p.into_inner()))
}

/// A directive mod_wsgi 6 removed, accepted so that 4.x configurations still start.
fn removed_directive(
    _: &mut ServerConfig,
    _: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    notice(
        true,
        format!(
            "WSGI1141: {} ({}) was removed in mod_wsgi 6 and has no effect; remove it",
            ctx.directive, ctx.location
        ),
    );
    Ok(())
}

/// WSGIPerInterpreterGIL / WSGIFreeThreading: what the linked Python cannot do is a
/// warning, never a refusal to start (as in mod_wsgi).
fn python_capability(
    s: &mut ServerConfig,
    args: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let name: &'static str = if ctx.directive == "WSGIFreeThreading" {
        "WSGIFreeThreading"
    } else {
        "WSGIPerInterpreterGIL"
    };
    let on = parse_on_off(name, &args[0])?;
    let version = ctx.python_version;
    if name == "WSGIFreeThreading" {
        s.python.free_threading = Some(on);
        if on && !ctx.python_free_threaded {
            notice(
                true,
                format!(
                    "WSGI0200: WSGIFreeThreading On ({}) has no effect: Python {version} is not a free-threaded build (PEP 703)",
                    ctx.location
                ),
            );
        }
    } else {
        s.python.per_interpreter_gil = Some(on);
        if on && !per_interpreter_gil(version) {
            notice(
                true,
                format!(
                    "WSGI0198: WSGIPerInterpreterGIL On ({}) requires Python 3.12 or later; it has no effect with Python {version}",
                    ctx.location
                ),
            );
        }
    }
    Ok(())
}

const ACCEPT_MUTEXES: [&str; 6] = [
    "default", "flock", "fcntl", "sysvsem", "posixsem", "pthread",
];

/// One WSGIHandlerScript line: `name script [options]`.
fn parse_handler_script(args: &[String]) -> Result<HandlerScript, ConfigError> {
    let options = AliasOptions::parse("WSGIHandlerScript", &args[2..])?;
    if options.callable_object.is_some() {
        return Err(ConfigError::Invalid {
            directive: "WSGIHandlerScript",
            reason: "callable-object= is not an option here: the handler is handle_request"
                .to_owned(),
        });
    }
    Ok(HandlerScript {
        name: args[0].clone(),
        script: args[1].clone(),
        options,
    })
}

fn handler_script(
    s: &mut ServerConfig,
    args: &[String],
    _: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let script = parse_handler_script(args)?;
    s.handler_scripts.retain(|h| h.name != script.name);
    s.handler_scripts.push(script);
    Ok(())
}

/// WSGIHandlerScript inside a directory section: the handler for that scope.
fn dir_handler_script(c: &mut DirConfig, args: &[String]) -> Result<(), ConfigError> {
    let script = parse_handler_script(args)?;
    let scripts = c.handler_scripts.get_or_insert_with(Vec::new);
    scripts.retain(|h| h.name != script.name);
    scripts.push(script);
    Ok(())
}

pub const DIRECTIVES: [Directive; 53] = [
    directive!(c"WSGIDaemonProcess", Server, 1, MANY, Apply::Server(daemon_process),
        c"name [processes=N] [threads=N] [user=name] [group=name] [option=value ...]"),
    directive!(c"WSGISharedStore", Global, 1, MANY, Apply::Server(shared_store),
        c"name [size=N[K|M|G]] [file=path] | name redis://host[:port][/db] [prefix=text] [timeout=seconds]"),
    directive!(c"WSGISocketPrefix", Global, 1, 1,
        Apply::Server(|s, a, _| { s.socket_prefix = Some(a[0].clone()); Ok(()) }),
        c"path prefix of daemon sockets (relative paths are under ServerRoot)"),
    directive!(c"WSGIHandlerScript", Directory, 2, MANY, Apply::ServerOrDir(handler_script, dir_handler_script),
        c"handler-name script [process-group=name] [application-group=name] [pass-authorization=On|Off]"),
    directive!(c"WSGIImportScript", Server, 3, 3, Apply::Server(import_script),
        c"script process-group=name application-group=name: load at process start"),
    directive!(c"WSGIRestrictProcess", Directory, 1, MANY,
        Apply::Dir(|c, a| { c.restrict_process = Some(a.iter().map(|g| if g == "%{GLOBAL}" { String::new() } else { g.clone() }).collect()); Ok(()) }),
        c"group [group ...]: the process groups WSGIProcessGroup may select here"),
    directive!(c"WSGIScriptAlias", Server, 2, MANY, Apply::Server(script_alias),
        c"URL-path file-or-directory [process-group=name] [application-group=name] [callable-object=name] [pass-authorization=On|Off]"),
    directive!(c"WSGIScriptAliasMatch", Server, 2, MANY, Apply::Server(script_alias_match),
        c"regex file-or-directory [options]: like WSGIScriptAlias with a regular expression"),
    directive!(c"WSGIApplicationGroup", Directory, 1, 1,
        Apply::Dir(|c, a| { c.application_group = Some(ApplicationGroup::parse(&a[0])?); Ok(()) }),
        c"%{GLOBAL}|%{RESOURCE}|%{SERVER}|%{HOST}|%{ENV:variable}|name"),
    directive!(c"WSGIProcessGroup", Directory, 1, 1,
        Apply::Dir(|c, a| { c.process_group = Some(ProcessGroup::parse(&a[0])?); Ok(()) }),
        c"%{GLOBAL}|%{ENV:variable}|daemon-group-name"),
    directive!(c"WSGICallableObject", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.callable_object = Some(CallableObject::parse(&a[0])?); Ok(()) }),
        c"name of the WSGI application object in the script (default: application)"),
    directive!(c"WSGIPassAuthorization", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.pass_authorization = Some(flag("WSGIPassAuthorization", a)?); Ok(()) }),
        c"On|Off: pass the Authorization header to the application"),
    directive!(c"WSGIAccessScript", AuthConfig, 1, MANY,
        Apply::Dir(|c, a| { c.access_script = Some(HookScript::parse("WSGIAccessScript", a)?); Ok(()) }),
        c"script [application-group=name]: allow_access(environ, host) decides who may connect"),
    directive!(c"WSGIAuthUserScript", AuthConfig, 1, MANY,
        Apply::Dir(|c, a| { c.auth_user_script = Some(HookScript::parse("WSGIAuthUserScript", a)?); Ok(()) }),
        c"script [application-group=name]: check_password/get_realm_hash behind 'AuthBasicProvider wsgi' and 'AuthDigestProvider wsgi'"),
    directive!(c"WSGIAuthGroupScript", AuthConfig, 1, MANY,
        Apply::Dir(|c, a| { c.auth_group_script = Some(HookScript::parse("WSGIAuthGroupScript", a)?); Ok(()) }),
        c"script [application-group=name]: groups_for_user behind 'Require wsgi-group name ...'"),
    directive!(c"WSGIGroupAuthoritative", AuthConfig, 1, 1,
        Apply::Dir(|c, a| { c.group_authoritative = Some(flag("WSGIGroupAuthoritative", a)?); Ok(()) }),
        c"On|Off: accepted for old configurations; with Apache 2.4, RequireAny/RequireAll decide"),
    directive!(c"WSGIDispatchScript", Directory, 1, MANY,
        Apply::Dir(|c, a| { c.dispatch_script = Some(HookScript::parse("WSGIDispatchScript", a)?); Ok(()) }),
        c"script [application-group=name]: process_group/application_group/callable_object(environ) choose per request"),
    directive!(c"WSGIPassApacheRequest", Directory, 1, 1,
        Apply::Dir(|c, a| { c.pass_apache_request = Some(flag("WSGIPassApacheRequest", a)?); Ok(()) }),
        c"On|Off: put the request_rec's address (apache.request_rec) in the environ"),
    directive!(c"WSGIErrorOverride", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.error_override = Some(flag("WSGIErrorOverride", a)?); Ok(()) }),
        c"On|Off: serve Apache's error page (ErrorDocument) instead of a daemon application's 4xx/5xx body"),
    directive!(c"WSGIChunkedRequest", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.chunked_request = Some(flag("WSGIChunkedRequest", a)?); Ok(()) }),
        c"On|Off: accept request bodies with Transfer-Encoding: chunked"),
    directive!(c"WSGIMapHEADToGET", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.map_head_to_get = Some(MapHeadToGet::parse(&a[0])?); Ok(()) }),
        c"On|Off|Auto: present HEAD requests to the application as GET"),
    directive!(c"WSGIScriptReloading", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.script_reloading = Some(flag("WSGIScriptReloading", a)?); Ok(()) }),
        c"On|Off: reload a WSGI script when its modification time changes"),
    directive!(c"WSGIEnableSendfile", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.enable_sendfile = Some(flag("WSGIEnableSendfile", a)?); Ok(()) }),
        c"On|Off: let wsgi.file_wrapper responses use the sendfile() system call"),
    directive!(c"WSGITrustedProxyHeaders", DirectoryHtaccess, 1, MANY,
        Apply::Dir(|c, a| {
            let added: Vec<ProxyHeader> = a.iter().map(|h| ProxyHeader::parse(h)).collect::<Result<_, _>>()?;
            c.trusted_proxy_headers.get_or_insert_with(Vec::new).extend(added);
            Ok(())
        }),
        c"header [header ...]: proxy headers (X-Forwarded-For, X-Forwarded-Proto, ...) to honour"),
    directive!(c"WSGITrustedProxies", DirectoryHtaccess, 1, MANY,
        Apply::Dir(|c, a| {
            let added: Vec<IpNet> = a.iter().map(|n| IpNet::parse(n)).collect::<Result<_, _>>()?;
            c.trusted_proxies.get_or_insert_with(Vec::new).extend(added);
            Ok(())
        }),
        c"address[/prefix] ...: peers whose proxy headers are believed"),
    // The server reading the configuration then applies the section's directives to
    // this block (they are checked against INTERPRETER_OPTION_DIRECTIVES).
    directive!(c"<WSGIInterpreterOptions", Global, 0, MANY,
        Apply::Server(|s, a, _| {
            let mut words = a.to_vec();
            if let Some(last) = words.last_mut() {
                *last = last.trim_end_matches('>').to_owned();
                if last.is_empty() {
                    words.pop();
                }
            }
            let block = crate::InterpreterOptions::parse_selectors(&words)?;
            s.python.interpreter_options.push(block);
            Ok(())
        }),
        c"[process-group=name] [application-group=name]>: per-interpreter WSGIPythonPath, WSGIRestrict*, WSGISwitchInterval, WSGIPerInterpreterGIL, WSGIFreeThreading"),
    directive!(c"WSGIPythonHome", Global, 1, 1,
        Apply::Server(|s, a, ctx| {
            crate::check_home_version("WSGIPythonHome", "WSGIPythonHome", &a[0], ctx.python_version)?;
            s.python.python_home = Some(a[0].clone());
            Ok(())
        }),
        c"prefix of the Python installation or virtual environment"),
    directive!(c"WSGIPythonPath", Global, 1, 1,
        Apply::Server(|s, a, _| {
            s.python.python_path.extend(a[0].split(':').filter(|d| !d.is_empty()).map(str::to_owned));
            Ok(())
        }),
        c"directory[:directory...] added with site.addsitedir"),
    directive!(c"WSGIPythonOptimize", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.optimize = Some(parse_optimize(&a[0])?); Ok(()) }),
        c"0|1|2: Python optimisation level (-O)"),
    directive!(c"WSGIPythonHashSeed", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.hash_seed = Some(HashSeed::parse(&a[0])?); Ok(()) }),
        c"random|0..4294967295: like PYTHONHASHSEED"),
    directive!(c"WSGIDontWriteBytecode", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.dont_write_bytecode = Some(flag("WSGIDontWriteBytecode", a)?); Ok(()) }),
        c"On|Off: do not write .pyc files"),
    directive!(c"WSGIRestrictEmbedded", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.restrict_embedded = Some(flag("WSGIRestrictEmbedded", a)?); Ok(()) }),
        c"On|Off: refuse to run applications inside Apache child processes"),
    directive!(c"WSGIRestrictStdin", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.restrict_stdin = Some(flag("WSGIRestrictStdin", a)?); Ok(()) }),
        c"On|Off: make any use of sys.stdin raise"),
    directive!(c"WSGIRestrictStdout", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.restrict_stdout = Some(flag("WSGIRestrictStdout", a)?); Ok(()) }),
        c"On|Off: make any use of sys.stdout raise (Off: it goes to the error log)"),
    directive!(c"WSGIRestrictSignal", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.restrict_signal = Some(flag("WSGIRestrictSignal", a)?); Ok(()) }),
        c"On|Off: ignore signal.signal() registrations by applications"),
    directive!(c"WSGIPythonWarnings", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.warnings.push(a[0].clone()); Ok(()) }),
        c"action:message:category:module:line: a warning filter, as python -W (repeatable)"),
    directive!(c"WSGIPythonEggs", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.python_eggs = Some(a[0].clone()); Ok(()) }),
        c"directory: PYTHON_EGG_CACHE of the Apache children"),
    directive!(c"WSGISwitchInterval", Global, 1, 1,
        Apply::Server(|s, a, _| {
            s.python.switch_interval = Some(crate::positive_seconds("WSGISwitchInterval", &a[0])?);
            Ok(())
        }),
        c"seconds: Python's thread switch interval in the Apache children (sys.setswitchinterval)"),
    directive!(c"WSGIServerMetrics", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.server_metrics = Some(flag("WSGIServerMetrics", a)?); Ok(()) }),
        c"On|Off: let embedded mode call mod_wsgi.server_metrics()"),
    directive!(c"WSGIPerInterpreterGIL", Global, 1, 1, Apply::Server(python_capability),
        c"On|Off: give sub-interpreters their own GIL (Python 3.12+)"),
    directive!(c"WSGIFreeThreading", Global, 1, 1, Apply::Server(python_capability),
        c"On|Off: run without the GIL (free-threaded Python builds)"),
    directive!(c"WSGIDestroyInterpreter", Global, 1, 1,
        Apply::Server(|s, a, _| { s.python.destroy_interpreter = Some(flag("WSGIDestroyInterpreter", a)?); Ok(()) }),
        c"On|Off: accepted; interpreters are never finalised here (atexit callbacks run)"),
    directive!(c"WSGIVerboseDebugging", Global, 1, 1,
        Apply::Server(|_, a, ctx| {
            flag("WSGIVerboseDebugging", a)?;
            notice(false, format!(
                "WSGIVerboseDebugging ({}) is deprecated and has no effect; use 'LogLevel info wsgi:debug' for lifecycle messages",
                ctx.location
            ));
            Ok(())
        }),
        c"On|Off: deprecated in mod_wsgi 6, no effect (use LogLevel wsgi:debug)"),
    directive!(c"WSGISocketRotation", Global, 1, 1,
        Apply::Server(|_, a, _| { flag("WSGISocketRotation", a).map(drop) }),
        c"On|Off: accepted; daemon sockets stay open across graceful restarts here"),
    directive!(c"WSGIAcceptMutex", Global, 1, 1,
        Apply::Server(|_, a, _| {
            if ACCEPT_MUTEXES.contains(&a[0].to_ascii_lowercase().as_str()) {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    directive: "WSGIAcceptMutex",
                    reason: format!("accept mutex '{}' is invalid; valid: {}", a[0], ACCEPT_MUTEXES.join(", ")),
                })
            }
        }),
        c"default|flock|fcntl|sysvsem|posixsem|pthread: accepted; daemons need no accept mutex here"),
    directive!(c"WSGITelemetryService", Global, 1, 2,
        Apply::Server(|s, a, _| crate::telemetry::parse_service(&mut s.python.telemetry, a)),
        c"unix:/path [interval=N]: send telemetry datagrams to this ingester socket"),
    directive!(c"WSGITelemetryOptions", Global, 1, MANY,
        Apply::Server(|s, a, _| crate::telemetry::parse_options(&mut s.python.telemetry, a)),
        c"None|All|[+|-]CaptureUserAgent ..."),
    directive!(c"WSGISlowRequests", Global, 1, 1,
        Apply::Server(|s, a, _| crate::telemetry::parse_slow_requests(&mut s.python.telemetry, a)),
        c"seconds: report requests running at least this long to the telemetry ingester"),
    directive!(c"WSGIIgnoreActivity", DirectoryHtaccess, 1, 1,
        Apply::Dir(|c, a| { c.ignore_activity = Some(flag("WSGIIgnoreActivity", a)?); Ok(()) }),
        c"On|Off: these requests do not reset a daemon's inactivity-timeout"),
    directive!(c"WSGILazyInitialization", Server, 1, 1, Apply::Server(removed_directive),
        c"On|Off: removed in mod_wsgi 6; accepted with a warning"),
    directive!(c"WSGINewRelicConfigFile", Global, 1, 1, Apply::Server(removed_directive),
        c"path: removed in mod_wsgi 6; accepted with a warning"),
    directive!(c"WSGINewRelicEnvironment", Global, 1, 1, Apply::Server(removed_directive),
        c"name: removed in mod_wsgi 6; accepted with a warning"),
    directive!(c"WSGICaseSensitivity", Global, 1, 1,
        Apply::Server(|_, a, _| { flag("WSGICaseSensitivity", a).map(drop) }),
        c"On|Off: accepted for compatibility; script paths are case sensitive on this platform"),
];

/// Group names defined so far in this configuration pass (the module is loaded afresh
/// for every pass, so this starts empty each time).
static DEFINED_GROUPS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn account(option: &'static str, value: &str) -> Result<Account, ConfigError> {
    identity::user(value).ok_or_else(|| ConfigError::Invalid {
        directive: "WSGIDaemonProcess",
        reason: format!("{option}: no such user '{value}'"),
    })
}

fn group_id(option: &'static str, value: &str) -> Result<u32, ConfigError> {
    identity::group(value).ok_or_else(|| ConfigError::Invalid {
        directive: "WSGIDaemonProcess",
        reason: format!("{option}: no such group '{value}'"),
    })
}

fn daemon_process(
    s: &mut ServerConfig,
    args: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let spec = DaemonSpec::parse(args)?;
    if let Some(home) = &spec.python_home {
        crate::check_home_version(
            "WSGIDaemonProcess",
            "python-home=",
            home,
            ctx.python_version,
        )?;
    }
    let mut defined = DEFINED_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, at)) = defined.iter().find(|(n, _)| *n == spec.name) {
        return Err(ConfigError::Invalid {
            directive: "WSGIDaemonProcess",
            reason: format!(
                "name duplicates previous WSGI daemon definition '{}' at {at}",
                spec.name
            ),
        });
    }
    let user = spec
        .user
        .as_deref()
        .map(|u| account("user", u))
        .transpose()?;
    if user.as_ref().is_some_and(|u| u.uid == 0) {
        return Err(ConfigError::Invalid {
            directive: "WSGIDaemonProcess",
            reason: "user: daemon processes may not run as root".to_owned(),
        });
    }
    let gid = spec
        .group
        .as_deref()
        .map(|g| group_id("group", g))
        .transpose()?;
    let supplementary_gids = spec
        .supplementary_groups
        .iter()
        .map(|g| group_id("supplementary-groups", g))
        .collect::<Result<_, _>>()?;
    let socket_user = spec
        .socket_user
        .as_deref()
        .map(|u| account("socket-user", u))
        .transpose()?;
    let script_owner = match (&spec.script_user, &spec.script_group) {
        (Some(u), _) => Some(ScriptOwner::User(account("script-user", u)?.uid)),
        (None, Some(g)) => Some(ScriptOwner::Group(group_id("script-group", g)?)),
        (None, None) => None,
    };
    defined.push((spec.name.clone(), ctx.location.clone()));
    s.daemons.push(DaemonDefinition {
        spec,
        user,
        gid,
        supplementary_gids,
        socket_user,
        script_owner,
        defined_at: ctx.location.clone(),
    });
    Ok(())
}

fn shared_store(
    s: &mut ServerConfig,
    args: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let spec = SharedStoreSpec::parse(args)?;
    if let Some(first) = s.stores.iter().find(|d| d.spec.name == spec.name) {
        return Err(ConfigError::Invalid {
            directive: "WSGISharedStore",
            reason: format!(
                "store '{}' is already defined at {}",
                spec.name, first.defined_at
            ),
        });
    }
    s.stores.push(StoreDefinition {
        spec,
        defined_at: ctx.location.clone(),
    });
    Ok(())
}

fn import_script(
    s: &mut ServerConfig,
    args: &[String],
    _: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    s.imports.push(ImportScript::parse(args)?);
    Ok(())
}

fn script_alias(
    s: &mut ServerConfig,
    args: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let options = AliasOptions::parse("WSGIScriptAlias", &args[2..])?;
    s.aliases.push(ScriptAlias {
        matcher: AliasMatcher::Prefix(args[0].clone()),
        target: args[1].clone(),
        options,
        location: ctx.location.clone(),
    });
    Ok(())
}

fn script_alias_match(
    s: &mut ServerConfig,
    args: &[String],
    ctx: &CmdContext<'_>,
) -> Result<(), ConfigError> {
    let options = AliasOptions::parse("WSGIScriptAliasMatch", &args[2..])?;
    let invalid = |reason: &str| ConfigError::Invalid {
        directive: "WSGIScriptAliasMatch",
        reason: format!("regular expression '{}' {reason}", args[0]),
    };
    if args[0].contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let regex = (ctx.compile_regex)(&args[0]).ok_or_else(|| invalid("does not compile"))?;
    s.aliases.push(ScriptAlias {
        matcher: AliasMatcher::Regex(regex),
        target: args[1].clone(),
        options,
        location: ctx.location.clone(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive(name: &CStr) -> &'static Directive {
        DIRECTIVES.iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn interpreter_options_set_the_open_block_only() {
        let path = directive(c"WSGIPythonPath");
        let argv = vec!["/srv/lib:/srv/more".to_owned()];
        let mut config = ServerConfig::default();
        assert_eq!(
            path.apply_in_interpreter_options(&mut config, &argv, "3.13", false),
            Err("<WSGIInterpreterOptions>: no open section".to_owned())
        );
        config
            .python
            .interpreter_options
            .push(crate::InterpreterOptions::default());
        assert_eq!(
            path.apply_in_interpreter_options(&mut config, &argv, "3.13", false),
            Ok(())
        );
        assert_eq!(
            config.python.interpreter_options[0].python_path,
            ["/srv/lib", "/srv/more"]
        );
        assert_eq!(
            config.python.python_path,
            ServerConfig::default().python.python_path
        );
        let bad = vec!["maybe".to_owned()];
        assert!(
            directive(c"WSGIRestrictStdin")
                .apply_in_interpreter_options(&mut config, &bad, "3.13", false)
                .is_err()
        );
    }

    #[test]
    fn capability_directives_in_a_block_set_the_block() {
        let gil = directive(c"WSGIPerInterpreterGIL");
        let mut config = ServerConfig::default();
        config
            .python
            .interpreter_options
            .push(crate::InterpreterOptions::default());
        let on = vec!["On".to_owned()];
        assert_eq!(
            gil.apply_in_interpreter_options(&mut config, &on, "3.13", false),
            Ok(())
        );
        assert_eq!(
            config.python.interpreter_options[0].per_interpreter_gil,
            Some(true)
        );
        assert_eq!(
            config.python.per_interpreter_gil,
            ServerConfig::default().python.per_interpreter_gil
        );
    }

    #[test]
    fn arguments_are_split_with_quotes_kept_together() {
        let alias = directive(c"WSGIScriptAlias");
        assert_eq!(
            alias.arguments("/app '/srv/my app.wsgi' process-group='a b'"),
            Ok(vec![
                "/app".to_owned(),
                "/srv/my app.wsgi".to_owned(),
                "process-group=a b".to_owned()
            ])
        );
    }

    #[test]
    fn a_wrong_number_of_arguments_gives_the_usage() {
        let alias = directive(c"WSGIScriptAlias");
        let expected = format!(
            "WSGIScriptAlias: wrong number of arguments; usage: WSGIScriptAlias {}",
            alias.usage.to_string_lossy()
        );
        assert_eq!(alias.arguments("/app"), Err(expected.clone()));
        assert_eq!(alias.arguments(""), Err(expected));
        let bounded = DIRECTIVES.iter().find(|d| d.max_args < 8).unwrap();
        let too_many = vec!["x"; bounded.max_args + 1].join(" ");
        assert!(bounded.arguments(&too_many).is_err());
        let most = vec!["x"; bounded.max_args].join(" ");
        assert_eq!(
            bounded.arguments(&most).map(|a| a.len()),
            Ok(bounded.max_args)
        );
        for d in DIRECTIVES.iter().filter(|d| d.min_args == 0) {
            assert_eq!(d.arguments(""), Ok(Vec::new()), "{:?}", d.name);
        }
    }

    fn words(text: &str) -> Vec<String> {
        crate::split_words(text)
    }

    /// The table's state (groups defined, notices) is per configuration pass: tests
    /// that apply directives take turns.
    static ONE_PASS_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Applies `text` as directive `name` to fresh configurations, as the server would.
    fn apply(name: &str, text: &str) -> Result<(DirConfig, ServerConfig), String> {
        let _pass = ONE_PASS_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let directive = DIRECTIVES
            .iter()
            .find(|d| d.name.to_str() == Ok(name))
            .unwrap_or_else(|| panic!("{name} is not in the table"));
        let args = words(text);
        if args.len() < directive.min_args || args.len() > directive.max_args {
            return Err("wrong number of arguments".to_owned());
        }
        let mut dir = DirConfig::default();
        let mut server = ServerConfig::default();
        let compile = |p: &str| (!p.contains('(') || p.contains(')')).then_some(RegexHandle(1));
        let ctx = CmdContext {
            location: "test.conf:1".to_owned(),
            directive: name.to_owned(),
            compile_regex: &compile,
            python_version: "3.11",
            python_free_threaded: false,
        };
        let result = match directive.apply {
            Apply::Dir(f) => f(&mut dir, &args),
            Apply::Server(f) | Apply::ServerOrDir(f, _) => f(&mut server, &args, &ctx),
        };
        DEFINED_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        result.map(|()| (dir, server)).map_err(|e| e.to_string())
    }

    /// (directive, arguments it takes, arguments it refuses with this text).
    const CASES: [(&str, &str, &str, &str); 53] = [
        (
            "WSGIHandlerScript",
            "wsgi-handler /srv/handler.wsgi process-group=%{GLOBAL}",
            "h /x.wsgi callable-object=x",
            "handle_request",
        ),
        (
            "WSGIDaemonProcess",
            "site processes=2 display-name='(wsgi:a b)'",
            "site bogus=1",
            "unknown option",
        ),
        (
            "WSGISharedStore",
            "s size=1M process-groups=site",
            "s size=1",
            "at least 128K",
        ),
        ("WSGISocketPrefix", "/run/wsgi", "", "wrong number"),
        (
            "WSGIImportScript",
            "/a.py process-group=%{GLOBAL} application-group=%{GLOBAL}",
            "/a.py process-group=x",
            "wrong number",
        ),
        ("WSGIRestrictProcess", "a %{GLOBAL}", "", "wrong number"),
        (
            "WSGIScriptAlias",
            "/ /srv/app.wsgi process-group=site",
            "/ /srv/app.wsgi bogus=1",
            "unknown option",
        ),
        (
            "WSGIScriptAliasMatch",
            "^/(a)$ /srv/$1.wsgi",
            "^/(a /srv/x.wsgi",
            "does not compile",
        ),
        (
            "WSGIApplicationGroup",
            "%{GLOBAL}",
            "%{NOPE}",
            "unknown %{...}",
        ),
        ("WSGIProcessGroup", "%{ENV:GROUP}", "%{NOPE}", "%{GLOBAL}"),
        ("WSGICallableObject", "app", "1app", "Python identifier"),
        ("WSGIPassAuthorization", "On", "Maybe", "On or Off"),
        ("WSGIErrorOverride", "off", "1", "On or Off"),
        (
            "WSGIAccessScript",
            "/srv/access.wsgi application-group=site",
            "/srv/access.wsgi process-group=g",
            "unknown option",
        ),
        (
            "WSGIAuthUserScript",
            "/srv/auth.wsgi",
            "/srv/auth.wsgi application-group",
            "needs a value",
        ),
        (
            "WSGIAuthGroupScript",
            "/srv/auth.wsgi application-group=%{GLOBAL}",
            "/srv/auth.wsgi application-group=%{X}",
            "unknown %{...}",
        ),
        ("WSGIGroupAuthoritative", "Off", "x", "On or Off"),
        (
            "WSGIDispatchScript",
            "/srv/dispatch.py",
            "/srv/dispatch.py callable-object=x",
            "unknown option",
        ),
        ("WSGIPassApacheRequest", "On", "x", "On or Off"),
        ("WSGIChunkedRequest", "On", "yes", "On or Off"),
        ("WSGIMapHEADToGET", "Auto", "Sometimes", "Auto"),
        ("WSGIScriptReloading", "Off", "x", "On or Off"),
        ("WSGIEnableSendfile", "On", "x", "On or Off"),
        (
            "WSGITrustedProxyHeaders",
            "X-Forwarded-For X-Forwarded-Proto",
            "X-Nope",
            "X-Nope",
        ),
        (
            "WSGITrustedProxies",
            "10.0.0.0/8 ::1",
            "10.0.0.0/99",
            "10.0.0.0/99",
        ),
        (
            "<WSGIInterpreterOptions",
            "process-group=d1 application-group=%{GLOBAL}>",
            "process-group=d1 bogus=1>",
            "unknown option 'bogus'",
        ),
        ("WSGIPythonHome", "/opt/venv", "", "wrong number"),
        ("WSGIPythonPath", "/a:/b", "", "wrong number"),
        ("WSGIPythonOptimize", "2", "3", "3"),
        ("WSGIPythonHashSeed", "random", "-1", "-1"),
        ("WSGIDontWriteBytecode", "On", "x", "On or Off"),
        ("WSGIRestrictEmbedded", "On", "x", "On or Off"),
        ("WSGIRestrictStdin", "Off", "x", "On or Off"),
        ("WSGIRestrictStdout", "Off", "x", "On or Off"),
        ("WSGIRestrictSignal", "On", "x", "On or Off"),
        (
            "WSGIPythonWarnings",
            "ignore::DeprecationWarning",
            "",
            "wrong number",
        ),
        ("WSGIPythonEggs", "/tmp/eggs", "", "wrong number"),
        (
            "WSGISwitchInterval",
            "0.005",
            "0",
            "positive number of seconds",
        ),
        ("WSGIServerMetrics", "On", "x", "On or Off"),
        ("WSGIPerInterpreterGIL", "On", "x", "On or Off"),
        ("WSGIFreeThreading", "Off", "x", "On or Off"),
        ("WSGIDestroyInterpreter", "On", "x", "On or Off"),
        ("WSGIVerboseDebugging", "Off", "x", "On or Off"),
        ("WSGISocketRotation", "Off", "x", "On or Off"),
        ("WSGIAcceptMutex", "fcntl", "spin", "accept mutex 'spin'"),
        (
            "WSGITelemetryService",
            "unix:/run/t.sock interval=2",
            "udp:h:1",
            "unix:/path",
        ),
        (
            "WSGITelemetryOptions",
            "+CaptureUserAgent",
            "All +X",
            "do not mix",
        ),
        ("WSGISlowRequests", "1.5", "-1", "number of seconds"),
        ("WSGIIgnoreActivity", "On", "x", "On or Off"),
        ("WSGILazyInitialization", "On", "", "wrong number"),
        ("WSGINewRelicConfigFile", "/etc/nr.ini", "", "wrong number"),
        ("WSGINewRelicEnvironment", "production", "", "wrong number"),
        ("WSGICaseSensitivity", "On", "x", "On or Off"),
    ];

    #[test]
    fn a_handler_script_in_a_section_replaces_the_outer_one_of_its_name() {
        let mut outer = DirConfig::default();
        dir_handler_script(&mut outer, &words("wsgi-resource /srv/outer.wsgi")).unwrap();
        dir_handler_script(&mut outer, &words("wsgi-other /srv/other.wsgi")).unwrap();
        let mut inner = DirConfig::default();
        dir_handler_script(
            &mut inner,
            &words("wsgi-resource /srv/inner.wsgi process-group=g"),
        )
        .unwrap();
        let merged = crate::Merge::merge(&outer, &inner);
        let script = |name: &str| merged.handler_script(name).map(|h| h.script.as_str());
        assert_eq!(script("wsgi-resource"), Some("/srv/inner.wsgi"));
        assert_eq!(script("wsgi-other"), Some("/srv/other.wsgi"));
        assert_eq!(script("wsgi-none"), None);
        assert!(dir_handler_script(&mut inner, &words("h /x.wsgi callable-object=x")).is_err());
    }

    #[test]
    fn every_directive_takes_its_syntax_and_names_a_bad_value() {
        assert_eq!(CASES.len(), DIRECTIVES.len(), "a case for every directive");
        for (name, good, bad, expected) in CASES {
            apply(name, good).unwrap_or_else(|e| panic!("{name} {good}: {e}"));
            let err = apply(name, bad)
                .map(drop)
                .expect_err(&format!("{name} accepted {bad:?}"));
            assert!(err.contains(expected), "{name} {bad:?}: {err}");
        }
    }

    #[test]
    fn every_directive_has_usage_text_and_a_mod_wsgi_name() {
        for d in &DIRECTIVES {
            let name = d.name.to_str().unwrap();
            assert!(name.trim_start_matches('<').starts_with("WSGI"), "{name}");
            assert!(!d.usage.to_bytes().is_empty(), "{name} has no usage text");
            // A section's opening tag may have no selectors.
            let least = usize::from(!name.starts_with('<'));
            assert!(d.min_args >= least && d.min_args <= d.max_args, "{name}");
        }
    }

    #[test]
    fn values_land_in_the_configuration() {
        let (dir, _) = apply("WSGIIgnoreActivity", "On").unwrap();
        assert_eq!(dir.ignore_activity, Some(true));
        let (_, server) = apply("WSGISwitchInterval", "0.01").unwrap();
        assert_eq!(
            server.python.switch_interval,
            Some(std::time::Duration::from_millis(10))
        );
        let (_, server) = apply("WSGIPythonWarnings", "error::UserWarning").unwrap();
        assert_eq!(server.python.warnings, ["error::UserWarning"]);
        let (_, server) = apply(
            "WSGIDaemonProcess",
            "site script-user=root lang='en_US.UTF-8'",
        )
        .unwrap();
        let d = &server.daemons[0];
        assert_eq!(d.script_owner, Some(ScriptOwner::User(0)));
        assert_eq!(d.spec.lang.as_deref(), Some("en_US.UTF-8"));
        let (_, server) = apply("WSGIScriptAliasMatch", "^/(a)$ /srv/$1.wsgi").unwrap();
        assert!(matches!(
            server.aliases[0].matcher,
            AliasMatcher::Regex(RegexHandle(1))
        ));
    }

    #[test]
    fn trusted_proxy_headers_and_proxies_repeats_accumulate() {
        let apply_of = |name: &str| {
            let directive = DIRECTIVES
                .iter()
                .find(|d| d.name.to_str() == Ok(name))
                .unwrap();
            let Apply::Dir(apply_dir) = directive.apply else {
                panic!("a per-directory directive");
            };
            apply_dir
        };
        let mut dir = DirConfig::default();
        let headers = apply_of("WSGITrustedProxyHeaders");
        headers(&mut dir, &words("X-Forwarded-For")).unwrap();
        headers(&mut dir, &words("X-Forwarded-Script-Name")).unwrap();
        assert_eq!(
            dir.trusted_proxy_headers,
            Some(vec![
                ProxyHeader::XForwardedFor,
                ProxyHeader::XForwardedScriptName
            ])
        );
        let proxies = apply_of("WSGITrustedProxies");
        proxies(&mut dir, &words("10.0.0.1")).unwrap();
        proxies(&mut dir, &words("192.168.0.0/16 127.0.0.1")).unwrap();
        assert_eq!(
            dir.trusted_proxies.map(|p| p.len()),
            Some(3),
            "as mod_wsgi: lines add up"
        );
    }

    #[test]
    fn python_capabilities_are_warnings_never_errors() {
        apply("WSGIPerInterpreterGIL", "On").unwrap();
        apply("WSGIFreeThreading", "On").unwrap();
        apply("WSGILazyInitialization", "On").unwrap();
        let notices: Vec<String> = NOTICES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        assert!(
            notices.iter().any(|n| n.starts_with("WSGI0198")),
            "{notices:?}"
        );
        assert!(
            notices.iter().any(|n| n.starts_with("WSGI0200")),
            "{notices:?}"
        );
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("WSGI1141: WSGILazyInitialization (test.conf:1)")),
            "{notices:?}"
        );
    }
}
