//! Daemon mode: process groups forked by the Apache parent (`process`), the serving loop
//! inside each daemon (`server`, `worker`), and the Apache-child side that proxies a
//! request to them (`client`). Nothing here sees an Apache type; `apache/daemons.rs` drives
//! it from the hooks.

use mod_wsgi_engine::{python, shared, telemetry, wsgi};
use mod_wsgi_os::{epoll, socket};

mod acceptor;
pub mod affinity;
mod buffers;
mod client;
mod flush;
mod gil_cpus;
mod gil_spread;
pub mod group;
mod keepalive;
mod outbox;
mod process;
pub mod restart_record;
mod run_as;
mod server;
pub mod setup;
mod startup;
pub mod stores;
pub mod supervisor;
mod transport;
mod worker;

pub use client::{ProxyOutcome, proxy};
pub use group::{
    DaemonGroup, Lane, Refusal, RequestLimits, RequestScript, find_group, group_for_request,
    max_request_head, set_groups,
};
pub use process::{
    ChildSetup, Lineage, close_group_listeners, drain, is_live_child_of, reap, spawn, spawn_bell,
};
pub use server::{INIT_FAILURE_STATUS, RETRY_NOW_STATUS};
