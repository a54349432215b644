//! Directive arguments as an administrator (or a generated config) may write them: every
//! parser of the crate over arbitrary argument lists must answer Ok or a ConfigError,
//! never panic, and what it accepts must respect the limits the parser promises.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mod_wsgi_config::{
    AliasOptions, ApplicationGroup, CallableObject, DAEMON_OPTIONS, DaemonSpec, HashSeed,
    ImportScript, IpNet, MIN_STORE_SIZE, MapHeadToGet, ProcessGroup, ProxyHeader, RequestFacts,
    RequestPorts, SharedStoreSpec, StoreBackend, files_named_in_traceback, parse_on_off,
    parse_optimize, parse_options, prefix_match_len, split_option,
};
use std::net::IpAddr;

#[derive(Arbitrary, Debug)]
struct Facts {
    server_name: String,
    host_name: Option<String>,
    script_name: String,
    case_sensitive: bool,
    env: Option<String>,
    ports: (u16, Option<u16>, u16, u16, u16),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Daemon(Vec<String>),
    /// Options drawn from the real option names, so values get exercised too.
    DaemonOptions(String, Vec<(u8, String)>),
    Options(Vec<String>, Vec<String>),
    Alias(Vec<String>),
    Store(Vec<String>),
    Import(Vec<String>),
    Groups(String, Facts),
    Callable(String, Option<String>),
    Prefix(String, String),
    Net(String, IpAddr),
    Values(String),
    Traceback(String),
}

fn check_groups(value: &str, f: &Facts) {
    let env = |_: &str| f.env.clone();
    let ports = RequestPorts {
        reported: f.ports.0,
        from_client: f.ports.1,
        local: f.ports.2,
        configured: f.ports.3,
        default: f.ports.4,
    };
    let facts = RequestFacts {
        server_name: &f.server_name,
        server_port: ports.group_port(),
        host_name: f.host_name.as_deref(),
        script_name: &f.script_name,
        case_sensitive: f.case_sensitive,
        env: &env,
    };
    if let Ok(g) = ApplicationGroup::parse(value) {
        let _ = g.expand(&facts);
    }
    if let Ok(g) = ProcessGroup::parse(value) {
        let _ = g.expand(&facts);
    }
}

fuzz_target!(|input: Input| match input {
    Input::Daemon(args) => {
        if let Ok(spec) = DaemonSpec::parse(&args) {
            assert!(!spec.name.is_empty());
            assert!(!spec.name.contains(['%', '/', '\0']));
            assert!((1..=1024).contains(&spec.processes));
            assert!((1..=1024).contains(&spec.threads));
            assert!(spec.umask.is_none_or(|m| m <= 0o777));
            assert!((-20..=19).contains(&spec.cpu_priority));
            let _ = spec.process_title();
            let _ = spec.run_once();
        }
    }
    Input::DaemonOptions(name, options) => {
        let mut args = vec![name];
        for (i, value) in options {
            let option = DAEMON_OPTIONS[usize::from(i) % DAEMON_OPTIONS.len()];
            args.push(format!("{option}={value}"));
        }
        if let Ok(spec) = DaemonSpec::parse(&args) {
            assert!((1..=1024).contains(&spec.processes));
            assert!(spec.listen_backlog >= 1);
            assert!((8192..=1 << 24).contains(&spec.header_buffer_size));
            assert!(spec.send_buffer_size == 0 || spec.send_buffer_size >= 512);
            let _ = spec.process_title();
        }
    }
    Input::Options(tokens, allowed) => {
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        if let Ok(options) = parse_options("Fuzz", &tokens, &allowed) {
            assert_eq!(options.len(), tokens.len());
            for (i, (name, _)) in options.iter().enumerate() {
                assert!(allowed.contains(name));
                assert!(options[..i].iter().all(|(n, _)| n != name), "{name} twice");
            }
        }
        for token in &tokens {
            if let Ok((name, value)) = split_option("Fuzz", token) {
                assert_eq!(format!("{name}={value}"), *token);
            }
        }
    }
    Input::Alias(tokens) => {
        if let Ok(options) = AliasOptions::parse("WSGIScriptAlias", &tokens) {
            let _ = options.as_dir_config();
        }
    }
    Input::Store(args) => {
        if let Ok(spec) = SharedStoreSpec::parse(&args) {
            assert!(!spec.name.is_empty());
            match spec.backend {
                StoreBackend::Memory { size, file } => {
                    assert!(size >= MIN_STORE_SIZE);
                    assert!(file.is_none_or(|f| f.starts_with('/')));
                }
                StoreBackend::Redis {
                    host, timeout_ms, ..
                } => {
                    assert!(!host.is_empty());
                    assert!(timeout_ms > 0);
                }
            }
        }
    }
    Input::Import(args) => {
        if let Ok(script) = ImportScript::parse(&args) {
            assert!(!script.process_group.contains("%{"));
            assert!(!script.application_group.contains("%{"));
        }
    }
    Input::Groups(value, facts) => check_groups(&value, &facts),
    Input::Callable(value, env) => {
        if let Ok(c) = CallableObject::parse(&value) {
            let _ = c.expand(&|_| env.clone());
        }
    }
    Input::Prefix(alias, uri) => {
        if let Some(n) = prefix_match_len(&alias, &uri) {
            assert!(uri.is_char_boundary(n), "{n} splits a character of {uri:?}");
        }
    }
    Input::Net(value, ip) => {
        if let Ok(net) = IpNet::parse(&value) {
            let _ = net.contains(ip);
        }
    }
    Input::Values(value) => {
        let _ = parse_on_off("Fuzz", &value);
        let _ = parse_optimize(&value);
        let _ = HashSeed::parse(&value);
        let _ = MapHeadToGet::parse(&value);
        let _ = ProxyHeader::parse(&value);
    }
    Input::Traceback(text) => {
        let files = files_named_in_traceback(&text);
        assert!(files.len() <= 64);
        assert!(files.iter().all(|f| f.starts_with('/')));
    }
});
