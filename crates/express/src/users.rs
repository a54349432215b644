//! Who Apache's children run as: User/Group when wsgi-express is started as root, and
//! the uid and groups that [`crate::access`] checks the application's files against.

use std::ffi::{CStr, CString};

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

struct Account {
    uid: u32,
    gid: u32,
}

fn account(name: &str) -> Option<Account> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string for the call; the returned record is
    // libc's static storage, read at once (this program is single-threaded).
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points at libc's record, valid until the next getpw call.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(Account { uid, gid })
}

fn group_exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated string; only the null-ness of the result is used.
    !unsafe { libc::getgrnam(c.as_ptr()) }.is_null()
}

fn group_name(gid: u32) -> Option<String> {
    // SAFETY: getgrgid returns libc's static record or null; the name is copied at once
    // (this program is single-threaded).
    unsafe {
        let gr = libc::getgrgid(gid);
        if gr.is_null() {
            return None;
        }
        Some(CStr::from_ptr((*gr).gr_name).to_string_lossy().into_owned())
    }
}

/// The User/Group for Apache's children: only when started as root (Apache refuses to
/// serve as root), defaulting to www-data (else nobody) and that user's primary group.
pub fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<(String, String)>, String> {
    if euid() != 0 {
        if let Some(u) = user.or(group) {
            return Err(format!(
                "--user/--group {u}: only possible when wsgi-express is started as root"
            ));
        }
        return Ok(None);
    }
    let user = match user {
        Some(u) => u.to_owned(),
        None if account("www-data").is_some() => "www-data".to_owned(),
        None => "nobody".to_owned(),
    };
    if user == "root" {
        return Err(
            "--user root: Apache does not serve requests as root; pick another user".to_owned(),
        );
    }
    let acct = account(&user).ok_or_else(|| format!("--user {user}: no such user"))?;
    let group = match group {
        Some(g) if group_exists(g) => g.to_owned(),
        Some(g) => return Err(format!("--group {g}: no such group")),
        None => group_name(acct.gid).unwrap_or_else(|| format!("#{}", acct.gid)),
    };
    Ok(Some((user, group)))
}

/// Who Apache's children and daemons run as: the account's uid and every group it has
/// there (Apache sets the Group, then initgroups for the User).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// The identity for `run_as` (from [`run_as`]); without it, this process's own (Apache
/// started by a non-root user keeps that user).
pub fn identity(run_as: Option<&(String, String)>) -> Option<Identity> {
    match run_as {
        Some((user, group)) => {
            let acct = account(user)?;
            let gid = match group.strip_prefix('#') {
                Some(n) => n.parse().ok()?,
                None => group_id(group)?,
            };
            let mut gids = group_list(user, gid);
            gids.push(gid);
            Some(Identity {
                name: user.clone(),
                uid: acct.uid,
                gids,
            })
        }
        None => {
            // SAFETY: getegid has no preconditions and cannot fail.
            let mut gids = vec![unsafe { libc::getegid() }];
            let mut buf = vec![0 as libc::gid_t; 256];
            // SAFETY: buf has room for the 256 entries the call is told about.
            let n = unsafe { libc::getgroups(256, buf.as_mut_ptr()) };
            if let Ok(n) = usize::try_from(n) {
                gids.extend_from_slice(&buf[..n]);
            }
            Some(Identity {
                name: user_name(euid()).unwrap_or_else(|| format!("#{}", euid())),
                uid: euid(),
                gids,
            })
        }
    }
}

fn group_id(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string; the record is libc's static storage,
    // read at once (this program is single-threaded).
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    // SAFETY: gr is checked non-null before it is read.
    (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
}

pub fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid returns libc's static record or null; the name is copied at once
    // (this program is single-threaded).
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return None;
        }
        Some(CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned())
    }
}

/// The groups `user` is a member of, with `gid` (what initgroups gives a process).
fn group_list(user: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = CString::new(user) else {
        return vec![gid];
    };
    let mut len: libc::c_int = 64;
    loop {
        let mut buf = vec![0 as libc::gid_t; usize::try_from(len).unwrap_or(64)];
        let mut n = len;
        // SAFETY: c is NUL-terminated; buf has room for the n entries the call is told
        // about, and n is updated to the count (or the count needed).
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, buf.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            buf.truncate(usize::try_from(n).unwrap_or(0));
            return buf;
        }
        if n <= len {
            return vec![gid];
        }
        len = n;
    }
}
