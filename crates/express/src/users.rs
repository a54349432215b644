//! Who Apache's children run as when wsgi-express is started as root, and whether they
//! will be able to read the application's files.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

struct Account {
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
    let gid = unsafe { (*pw).pw_gid };
    Some(Account { gid })
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

/// Why a path might not be readable by an unprivileged user: a directory on the way
/// without search permission for others, or the file itself not readable by others.
pub fn unreadable_by_others(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let needed = if meta.is_dir() { 0o005 } else { 0o004 };
    if meta.mode() & needed != needed {
        return Some(format!("mode {:o}", meta.mode() & 0o7777));
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if let Ok(m) = std::fs::metadata(d)
            && m.mode() & 0o001 == 0
        {
            return Some(format!("{} has mode {:o}", d.display(), m.mode() & 0o7777));
        }
        dir = d.parent();
    }
    None
}
