//! mod_wsgi_rs: an Apache httpd 2.4 module that runs Python WSGI applications.
//!
//! Layers (see ARCHITECTURE.md): `apache` is the only code that sees httpd/APR types and
//! the only caller into the rest from C; `wsgi` implements PEP 3333 over two traits (a body
//! reader and a response sink); `python` is the only code that calls CPython's C API;
//! `daemon` forks and serves daemon process groups and proxies requests to them.
mod apache;
mod daemon;
mod python;
mod shared;
mod wsgi;
