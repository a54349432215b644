//! Pure configuration model of mod_wsgi_rs: directive values, their parsing and merging.
//!
//! Nothing here knows about Apache or Python. The Apache layer feeds directive arguments in
//! and stores the typed results; every mistake is reported here, at config time, so that
//! `apachectl configtest` names it.
#![forbid(unsafe_code)]

mod alias;
mod daemon;
pub mod directives;
mod error;
mod groups;
mod hook_script;
mod interpreter_options;
mod merge;
mod net;
mod options;
mod python_home;
mod resolve;
mod server;
mod store;
mod telemetry;
mod traceback;
mod values;
mod words;

pub use alias::{AliasOptions, join_target, prefix_match_len, request_dir_config};
pub use daemon::{DAEMON_OPTIONS, DEFAULT_LOCALE, DaemonSpec, ImportScript};
pub use error::ConfigError;
pub use groups::{ApplicationGroup, CallableObject, ProcessGroup, RequestFacts, RequestPorts};
pub use hook_script::HookScript;
pub use interpreter_options::{
    INTERPRETER_OPTION_DIRECTIVES, InterpreterOptions, ResolvedInterpreterOptions,
    check_interpreter_option, resolve_interpreter_options,
};
pub use merge::{DirConfig, Merge, PythonConfig};
pub use net::IpNet;
pub use options::{parse_options, split_option};
pub use python_home::{check_home_version, home_python_version, major_minor};
pub use resolve::{Refusal, Selection, select};
pub use server::{
    AliasMatcher, DaemonDefinition, HandlerScript, RegexHandle, ScriptAlias, ScriptOwner,
    ServerConfig, StoreDefinition, check_group_references, preloads_for,
};
pub use store::{DEFAULT_STORE_SIZE, MIN_STORE_SIZE, SharedStoreSpec, StoreAccess, StoreBackend};
pub use telemetry::TelemetryConfig;
pub use traceback::files_named_in_traceback;
pub use values::{
    HashSeed, MapHeadToGet, ProxyCategory, ProxyHeader, parse_on_off, parse_optimize,
    positive_seconds,
};
pub use words::split_words;
