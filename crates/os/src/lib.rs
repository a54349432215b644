//! The raw operating-system calls of mod_wsgi_rs, in one crate (with their `unsafe`):
//! unix sockets and their options (`socket`), epoll (`epoll`) and an eventfd that wakes
//! its waiters (`bell`), users and groups looked up with the reentrant libc calls
//! (`identity`), and the CPUs a thread runs on (`sched`). Everything above uses these safe wrappers.

pub mod bell;
pub mod epoll;
pub mod identity;
pub mod sched;
pub mod socket;
