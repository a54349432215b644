//! One server's configuration (main server or virtual host) as the directives build it:
//! script aliases, daemon groups with their accounts resolved, imports, stores and the
//! process-wide Python settings. Apache keeps one per server; nothing here sees Apache.

use crate::{
    AliasOptions, ApplicationGroup, DaemonSpec, ImportScript, ProcessGroup, PythonConfig,
    SharedStoreSpec,
};
use mod_wsgi_os::identity::Account;

/// Who must own the scripts a daemon group runs (`script-user=`, `script-group=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOwner {
    User(u32),
    Group(u32),
}

impl ScriptOwner {
    /// Whether a script owned by (`uid`, `gid`) may run.
    pub fn allows(self, uid: u32, gid: u32) -> bool {
        match self {
            ScriptOwner::User(u) => u == uid,
            ScriptOwner::Group(g) => g == gid,
        }
    }
}

/// A `WSGIScriptAliasMatch` pattern compiled by the server that reads the
/// configuration: an opaque handle (Apache's `ap_regex_t` in its config pool) that only
/// that server's code dereferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegexHandle(pub usize);

#[derive(Clone)]
pub enum AliasMatcher {
    Prefix(String),
    Regex(RegexHandle),
}

/// One WSGIScriptAlias or WSGIScriptAliasMatch.
#[derive(Clone)]
pub struct ScriptAlias {
    pub matcher: AliasMatcher,
    pub target: String,
    pub options: AliasOptions,
    /// "file:line" of the directive.
    pub location: String,
}

/// A `WSGIDaemonProcess` as read, with its accounts resolved at config time.
#[derive(Clone)]
pub struct DaemonDefinition {
    pub spec: DaemonSpec,
    pub user: Option<Account>,
    pub gid: Option<u32>,
    pub supplementary_gids: Vec<u32>,
    pub socket_user: Option<Account>,
    /// `script-user=` (uid) or `script-group=` (gid): who must own the group's scripts.
    pub script_owner: Option<ScriptOwner>,
    /// "file:line" of the directive, for later error messages.
    pub defined_at: String,
}

/// A `WSGISharedStore` as read.
#[derive(Clone)]
pub struct StoreDefinition {
    pub spec: SharedStoreSpec,
    /// "file:line" of the directive.
    pub defined_at: String,
}

/// One `WSGIHandlerScript name script [options]`: requests Apache gives the handler
/// `name` (SetHandler, AddHandler) run `script`'s `handle_request`.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerScript {
    pub name: String,
    pub script: String,
    /// process-group=, application-group=, pass-authorization= (callable-object is
    /// always `handle_request`).
    pub options: AliasOptions,
}

/// Configuration of one server (main or virtual host).
#[derive(Clone, Default)]
pub struct ServerConfig {
    pub aliases: Vec<ScriptAlias>,
    /// Groups defined in this server's own scope (not inherited by virtual hosts).
    pub daemons: Vec<DaemonDefinition>,
    /// WSGIImportScript lines of this server's own scope.
    pub imports: Vec<ImportScript>,
    /// Only meaningful on the main server; the directives are GLOBAL_ONLY.
    pub python: PythonConfig,
    pub socket_prefix: Option<String>,
    /// WSGISharedStore lines (main server only; the directive is GLOBAL_ONLY).
    pub stores: Vec<StoreDefinition>,
    /// WSGIHandlerScript lines: this server's, then the main server's.
    pub handler_scripts: Vec<HandlerScript>,
}

impl ServerConfig {
    /// A virtual host's configuration over the main server's (`base`): its own aliases
    /// first, then the main server's; its own groups and imports; the process-wide parts
    /// from the main server.
    pub fn under(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        let mut aliases = add.aliases.clone();
        aliases.extend(base.aliases.iter().cloned());
        ServerConfig {
            aliases,
            daemons: add.daemons.clone(),
            imports: add.imports.clone(),
            python: base.python.clone(),
            socket_prefix: base.socket_prefix.clone(),
            stores: base.stores.clone(),
            handler_scripts: add
                .handler_scripts
                .iter()
                .chain(&base.handler_scripts)
                .cloned()
                .collect(),
        }
    }
}

/// Checks that every group a server's configuration names is defined by some
/// WSGIDaemonProcess (`configs`: every server's own configuration, main first). Errors
/// name the directive and its file and line.
pub fn check_group_references(configs: &[&ServerConfig]) -> Result<(), String> {
    let defined = |name: &str| {
        configs
            .iter()
            .flat_map(|c| c.daemons.iter())
            .any(|d| d.spec.name == name)
    };
    for store in configs
        .first()
        .map(|main| main.stores.as_slice())
        .unwrap_or_default()
    {
        for name in store.spec.access.process_groups.iter().flatten() {
            if !defined(name) {
                return Err(format!(
                    "WSGISharedStore {} ({}): process-groups names '{name}', which no WSGIDaemonProcess defines",
                    store.spec.name, store.defined_at
                ));
            }
        }
    }
    for c in configs {
        for alias in &c.aliases {
            if let Some(ProcessGroup::Named(name)) = &alias.options.process_group
                && !defined(name)
            {
                return Err(format!(
                    "WSGIScriptAlias {} ({}): process-group '{name}' is not defined by any WSGIDaemonProcess",
                    alias.target, alias.location
                ));
            }
        }
        for h in &c.handler_scripts {
            if let Some(ProcessGroup::Named(name)) = &h.options.process_group
                && !defined(name)
            {
                return Err(format!(
                    "WSGIHandlerScript {} {}: process-group '{name}' is not defined by any WSGIDaemonProcess",
                    h.name, h.script
                ));
            }
        }
        for import in &c.imports {
            if !import.process_group.is_empty() && !defined(&import.process_group) {
                return Err(format!(
                    "WSGIImportScript {}: process-group '{}' is not defined by any WSGIDaemonProcess",
                    import.path, import.process_group
                ));
            }
        }
    }
    Ok(())
}

/// The scripts daemon group `name` ("": Apache's children, embedded mode) loads at
/// process start: its WSGIImportScript lines, and each WSGIScriptAlias (not ...Match, not
/// a directory) that names the group (`%{GLOBAL}` for embedded mode) and a static
/// application group. Each is (script path, application group; "" is main).
impl ServerConfig {
    /// The handler script Apache's handler `name` stands for, if any.
    pub fn handler_script(&self, name: &str) -> Option<&HandlerScript> {
        self.handler_scripts.iter().find(|h| h.name == name)
    }
}

pub fn preloads_for(configs: &[&ServerConfig], name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in configs {
        for i in c.imports.iter().filter(|i| i.process_group == name) {
            out.push((i.path.clone(), i.application_group.clone()));
        }
        for a in &c.aliases {
            let ours = match &a.options.process_group {
                Some(ProcessGroup::Named(p)) => p == name,
                Some(ProcessGroup::Global) => name.is_empty(),
                _ => false,
            };
            let static_group = match &a.options.application_group {
                Some(ApplicationGroup::Named(g)) if ours => g.clone(),
                Some(ApplicationGroup::Global) if ours => String::new(),
                _ => continue,
            };
            if matches!(a.matcher, AliasMatcher::Prefix(_)) && !a.target.ends_with('/') {
                out.push((a.target.clone(), static_group));
            }
        }
    }
    out
}
