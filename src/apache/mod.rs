//! The only code that sees httpd/APR types. C calls in through `hooks` (and the
//! directive setters in `directives`), always via `trampoline`.

mod config;
mod daemons;
mod directives;
mod handler;
mod hooks;
mod io;
mod log;
mod module;
mod phases;
mod pool;
mod request;
mod stores;
pub mod sys;
mod trampoline;
