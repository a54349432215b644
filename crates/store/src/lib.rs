//! A key/value store in memory shared by every process of an Apache server: the parent
//! maps it before forking, children and daemon processes use it under a robust
//! process-shared lock.
//!
//! `table` is the data structure (safe code over a byte slice, testable on a `Vec`);
//! `shm` is the mapping and the lock (the crate's only unsafe code).
#![deny(unsafe_code)]

mod health;
#[allow(unsafe_code)]
mod shm;
mod table;
mod value;

pub use health::{Availability, GroupHealth};
pub use shm::{Guard, Opened, SharedStore, SharedWords, StoreError, now_ms};
pub use table::{MAX_KEY, MIN_SIZE, Repair, Stats, Table, TableError};
pub use value::{KeyKind, Value, ValueRef};
