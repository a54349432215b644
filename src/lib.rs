//! mod_wsgi_rs: an Apache httpd 2.4 module that runs Python WSGI applications.
//!
//! This crate is the thin Apache layer (see ARCHITECTURE.md): `apache` is the only code
//! that sees httpd/APR types and the only caller into the rest from C. What runs the
//! applications lives in Apache-free crates that unit-test on their own:
//! `mod_wsgi_engine` (the WSGI core, the CPython layer, the shared stores) and
//! `mod_wsgi_daemon` (daemon process groups and the proxy to them).
mod apache;

use mod_wsgi_daemon as daemon;
use mod_wsgi_engine::{python, shared, wsgi};
