//! The shared mapping a store lives in, and its process-shared robust lock. The only
//! unsafe code of the crate: mapping memory, the pthread mutex, and handing the locked
//! memory to `Table` as a slice.
//!
//! A store is mapped by the Apache parent before it forks, so every child and daemon
//! process inherits the same pages at the same address. The lock is a robust mutex: when a
//! process dies holding it, the next locker is told (EOWNERDEAD), recounts the table with
//! `Table::repair`, and carries on.

use crate::table::{Repair, Table};
use std::cell::UnsafeCell;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

const MAGIC: u64 = 0x6d6f_645f_7773_6769; // "mod_wsgi" read as a number
const LAYOUT_VERSION: u32 = 1;
/// Bytes before the table: the control block, padded.
const CONTROL_LEN: usize = 256;
/// glibc's value of PTHREAD_MUTEX_ROBUST (the libc crate does not export it for glibc).
const PTHREAD_MUTEX_ROBUST: libc::c_int = 1;

#[repr(C)]
struct Control {
    magic: u64,
    version: u32,
    _spare: u32,
    len: u64,
    /// Bumped by every broadcast; read without taking the lock.
    sequence: AtomicU64,
    mutex: UnsafeCell<libc::pthread_mutex_t>,
}

const _: () = assert!(std::mem::size_of::<Control>() <= CONTROL_LEN);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("size {0} is below the minimum of {min} bytes", min = crate::MIN_SIZE + CONTROL_LEN)]
    TooSmall(usize),
    #[error("cannot map {len} bytes of shared memory: {err}")]
    Map { len: usize, err: io::Error },
    #[error("backing file {path}: {err}")]
    File { path: String, err: io::Error },
    #[error("cannot initialise the store's lock: {0}")]
    Lock(io::Error),
    #[error(
        "its lock was not released within {} s (a process is stuck holding it, or the \
         store's memory was overwritten); the operation was not done",
        LOCK_WAIT.as_secs()
    )]
    LockTimeout,
}

/// The longest wait for a store's lock. Every change under it takes microseconds; a
/// longer wait means a process is stuck with it or the memory was overwritten, and the
/// caller gets an error instead of waiting forever.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A store's mapping. Never unmapped implicitly: it lives until `unmap` or process exit,
/// because forked processes keep using it after the creator has moved on.
pub struct SharedStore {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is shared memory valid for the life of the value; every access to
// the table goes through the process-shared mutex, and the control block's other fields
// are read-only after creation or atomics.
unsafe impl Send for SharedStore {}
// SAFETY: as above.
unsafe impl Sync for SharedStore {}

/// How the memory was found when a store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// New memory (or an unusable file): the store starts empty.
    Empty,
    /// A backing file with a store of this size and layout: its keys are kept.
    Kept,
}

impl SharedStore {
    /// Maps `len` bytes of anonymous shared memory (inherited by forked children) and
    /// lays out an empty store in it.
    pub fn anonymous(len: usize) -> Result<SharedStore, StoreError> {
        Self::check_len(len)?;
        let base = map(len, -1)?;
        let store = SharedStore { base, len };
        store.initialise(true)?;
        Ok(store)
    }

    /// Maps `path` (created or resized to `len` bytes) shared, so the keys outlive the
    /// server. A file holding a store of the same size is kept; anything else is emptied.
    /// Only one server may use a file at a time.
    pub fn file(path: &Path, len: usize) -> Result<(SharedStore, Opened), StoreError> {
        Self::check_len(len)?;
        let file_error = |err| StoreError::File {
            path: path.display().to_string(),
            err,
        };
        // Only the server's own processes use the keys, through the inherited mapping:
        // nobody needs to read the file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(file_error)?;
        let existing = file.metadata().map_err(file_error)?.len();
        if existing != len as u64 {
            file.set_len(len as u64).map_err(file_error)?;
        }
        let base = map(len, file.as_raw_fd())?;
        let store = SharedStore { base, len };
        let control = store.control();
        let kept = existing == len as u64
            && control.magic == MAGIC
            && control.version == LAYOUT_VERSION
            && control.len == len as u64;
        if kept {
            // The lock word may name a thread of a server that is gone: start it afresh,
            // and recount in case that server died inside a change.
            store.init_mutex()?;
            store.lock()?.table().repair();
            Ok((store, Opened::Kept))
        } else {
            store.initialise(false)?;
            Ok((store, Opened::Empty))
        }
    }

    /// Takes over a mapping made by `anonymous` or `file` in this process earlier (by a
    /// previous load of this code), without touching its contents.
    ///
    /// # Safety
    /// `address` and `len` must be those of a `SharedStore` of this process that was
    /// neither unmapped nor is owned by another live `SharedStore` value.
    pub unsafe fn from_raw(address: usize, len: usize) -> Option<SharedStore> {
        let base = NonNull::new(address as *mut u8)?;
        let store = SharedStore { base, len };
        let c = store.control();
        (c.magic == MAGIC && c.version == LAYOUT_VERSION && c.len == len as u64).then_some(store)
    }

    /// Where the mapping is, for `from_raw` after this code is reloaded.
    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// Bytes mapped, control block included.
    pub fn size(&self) -> usize {
        self.len
    }

    /// Removes the mapping from this process.
    pub fn unmap(self) {
        // SAFETY: base/len are the mapping this value owns; consuming self means no
        // reference into it remains in this value's users.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }

    fn check_len(len: usize) -> Result<(), StoreError> {
        if len < crate::MIN_SIZE + CONTROL_LEN {
            Err(StoreError::TooSmall(len))
        } else {
            Ok(())
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: the mapping starts with CONTROL_LEN bytes reserved for the Control block
        // (page-aligned, so aligned for it) and lives as long as self.
        unsafe { &*self.base.as_ptr().cast::<Control>() }
    }

    /// Writes the control block and an empty table. `zeroed` memory (a fresh anonymous
    /// mapping) already is an empty table: not touching it keeps its pages unallocated
    /// until used.
    fn initialise(&self, zeroed: bool) -> Result<(), StoreError> {
        // SAFETY: called before the mapping is shared with any other process or thread
        // (right after mapping it), so this is the only access.
        unsafe {
            let c = self.base.as_ptr().cast::<Control>();
            std::ptr::write_bytes(self.base.as_ptr(), 0, CONTROL_LEN);
            (*c).magic = MAGIC;
            (*c).version = LAYOUT_VERSION;
            (*c).len = self.len as u64;
        }
        self.init_mutex()?;
        if !zeroed {
            self.lock()?.table().clear();
        }
        Ok(())
    }

    fn init_mutex(&self) -> Result<(), StoreError> {
        let mutex = self.control().mutex.get();
        // SAFETY: the attribute object is initialised before use and destroyed after;
        // `mutex` points into the mapping, which no other process uses yet.
        let rc = unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            let mut rc =
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(&mut attr, PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(mutex, &attr);
            }
            libc::pthread_mutexattr_destroy(&mut attr);
            rc
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(StoreError::Lock(io::Error::from_raw_os_error(rc)))
        }
    }

    /// Takes the store's lock. A process that died holding it is noticed here: the table
    /// is recounted and the guard reports what the repair found.
    pub fn lock(&self) -> Result<Guard<'_>, StoreError> {
        let mutex = self.control().mutex.get();
        // SAFETY: the mutex was initialised process-shared in this mapping, which is live.
        let rc = unsafe { lock_with_deadline(mutex) };
        let mut guard = Guard {
            store: self,
            repaired: None,
        };
        match rc {
            0 => Ok(guard),
            libc::EOWNERDEAD => {
                let report = guard.table().repair();
                // SAFETY: this thread owns the mutex (EOWNERDEAD hands it over locked).
                unsafe { libc::pthread_mutex_consistent(mutex) };
                guard.repaired = Some(report);
                Ok(guard)
            }
            libc::ETIMEDOUT => {
                std::mem::forget(guard);
                Err(StoreError::LockTimeout)
            }
            rc => {
                std::mem::forget(guard);
                Err(StoreError::Lock(io::Error::from_raw_os_error(rc)))
            }
        }
    }

    /// The broadcast sequence: a counter any process may bump and read without the lock.
    pub fn sequence(&self) -> &AtomicU64 {
        &self.control().sequence
    }
}

/// `pthread_mutex_timedlock` with a deadline `LOCK_WAIT` from now.
///
/// # Safety
/// `mutex` points at an initialised process-shared mutex in a live mapping.
unsafe fn lock_with_deadline(mutex: *mut libc::pthread_mutex_t) -> libc::c_int {
    let mut deadline = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut deadline) };
    deadline.tv_sec += LOCK_WAIT.as_secs() as libc::time_t;
    // SAFETY: per the caller; the deadline is a valid timespec.
    unsafe { libc::pthread_mutex_timedlock(mutex, &deadline) }
}

fn map(len: usize, fd: libc::c_int) -> Result<NonNull<u8>, StoreError> {
    let flags = if fd < 0 {
        libc::MAP_SHARED | libc::MAP_ANONYMOUS
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: a new mapping chosen by the kernel; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(StoreError::Map {
            len,
            err: io::Error::last_os_error(),
        });
    }
    NonNull::new(p.cast()).ok_or(StoreError::Map {
        len,
        err: io::Error::other("null mapping"),
    })
}

/// The store, locked by this thread.
pub struct Guard<'a> {
    store: &'a SharedStore,
    repaired: Option<Repair>,
}

impl Guard<'_> {
    /// The table, for as long as the lock is held.
    pub fn table(&mut self) -> Table<'_> {
        let len = self.store.len - CONTROL_LEN;
        // SAFETY: the bytes after the control block belong to the table; this thread
        // holds the process-shared lock, so no other thread or process touches them while
        // the slice (tied to &mut self, hence to the guard) exists.
        let mem = unsafe {
            std::slice::from_raw_parts_mut(self.store.base.as_ptr().add(CONTROL_LEN), len)
        };
        Table::over(mem)
    }

    /// Some(report) if the previous holder died holding the lock.
    pub fn repaired(&self) -> Option<Repair> {
        self.repaired
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.table().repair();
        }
        // SAFETY: this thread locked the mutex when it made the guard.
        unsafe { libc::pthread_mutex_unlock(self.store.control().mutex.get()) };
    }
}

/// A block of atomic words in anonymous shared memory (zeroed when mapped), for counters
/// that every forked process updates without a lock.
pub struct SharedWords {
    base: NonNull<u8>,
    count: usize,
}

// SAFETY: the words are atomics in a mapping that lives as long as the value; sharing
// atomics between threads (and processes) is what they are for.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    pub fn anonymous(count: usize) -> Result<SharedWords, StoreError> {
        let len = count.max(1) * 8;
        let base = map(len, -1)?;
        Ok(SharedWords { base, count })
    }

    /// Takes over words mapped by `anonymous` earlier in this process.
    ///
    /// # Safety
    /// `address` and `count` must be those of a `SharedWords` of this process that was
    /// neither unmapped nor is owned by another live value.
    pub unsafe fn from_raw(address: usize, count: usize) -> Option<SharedWords> {
        NonNull::new(address as *mut u8).map(|base| SharedWords { base, count })
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping holds `count` page-aligned, zero-initialised u64 words (a
        // valid AtomicU64 bit pattern) and lives as long as self; atomics allow shared
        // mutation through &.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast::<AtomicU64>(), self.count) }
    }

    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn unmap(self) {
        // SAFETY: the mapping this value owns; consumed, so no slice into it remains.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.count.max(1) * 8) };
    }
}

/// Milliseconds since the Unix epoch: the clock expiry times are kept in, the same in
/// every process.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn sequence_is_shared_state_of_the_mapping() {
        let store = SharedStore::anonymous(1 << 20).expect("map");
        store.sequence().fetch_add(3, Ordering::SeqCst);
        assert_eq!(store.sequence().load(Ordering::SeqCst), 3);
        store.unmap();
    }

    #[test]
    fn a_lock_held_too_long_is_an_error_not_a_hang() {
        let store = std::sync::Arc::new(SharedStore::anonymous(1 << 20).expect("map"));
        let held = store.lock().expect("lock");
        let other = store.clone();
        let started = std::time::Instant::now();
        let waited = std::thread::spawn(move || other.lock().map(|_| ()).unwrap_err())
            .join()
            .unwrap();
        assert!(matches!(waited, StoreError::LockTimeout), "{waited}");
        assert!(started.elapsed() >= LOCK_WAIT);
        assert!(started.elapsed() < LOCK_WAIT * 2);
        drop(held);
        assert!(store.lock().is_ok());
    }

    #[test]
    fn an_overwritten_lock_never_hangs_a_locker() {
        for garbage in [0xffu8, 0x01, 0x7f] {
            let store = SharedStore::anonymous(1 << 20).expect("map");
            // What a hostile process sharing the memory could write over the control block.
            // SAFETY: the mapping is live and at least CONTROL_LEN bytes long.
            unsafe { std::ptr::write_bytes(store.base.as_ptr(), garbage, CONTROL_LEN) };
            let started = std::time::Instant::now();
            // SAFETY: re-reading the same live mapping.
            let again = unsafe { SharedStore::from_raw(store.address(), store.size()) };
            assert!(
                again.is_none(),
                "a store with a bad magic number is refused"
            );
            let result = store.lock().map(|mut g| g.table().stats().keys);
            assert!(
                started.elapsed() < LOCK_WAIT * 2,
                "{garbage:#x}: {result:?}"
            );
        }
    }
}
