//! The raw operating-system calls of mod_wsgi_rs, in one crate (with their `unsafe`):
//! unix sockets and their options (`socket`), epoll (`epoll`) and an eventfd that wakes
//! its waiters (`bell`), and users and groups looked up with the reentrant libc calls
//! (`identity`). Everything above uses these safe wrappers.

pub mod bell;
pub mod epoll;
pub mod identity;
pub mod socket;
