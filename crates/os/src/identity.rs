//! Users and groups by name or `#id`, as WSGIDaemonProcess `user=`/`group=` name them.

use std::ffi::{CStr, CString};

/// A resolved account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

fn numeric(spec: &str) -> Option<u32> {
    spec.strip_prefix('#').and_then(|n| n.parse().ok())
}

/// Looks a user up by name or `#uid`.
pub fn user(spec: &str) -> Option<Account> {
    let mut pwd: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = match numeric(spec) {
        // SAFETY: pwd, buf and result are valid for the call; getpwuid_r writes only into
        // them and `result` points at `pwd` or is null.
        Some(uid) => unsafe {
            libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result)
        },
        None => {
            let name = CString::new(spec).ok()?;
            // SAFETY: as above; name is NUL-terminated.
            unsafe {
                libc::getpwnam_r(
                    name.as_ptr(),
                    &mut pwd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                )
            }
        }
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success the string fields point into `buf`, which is still alive.
    let text = |p: *const libc::c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    Some(Account {
        name: text(pwd.pw_name),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        home: text(pwd.pw_dir),
    })
}

/// Looks a group up by name or `#gid`.
pub fn group(spec: &str) -> Option<u32> {
    if let Some(gid) = numeric(spec) {
        return Some(gid);
    }
    let name = CString::new(spec).ok()?;
    // SAFETY: as for getpwnam_r; a zeroed group struct is a valid output buffer.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

/// The name of group `gid`.
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: as for getpwnam_r; a zeroed group struct is a valid output buffer.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points into `buf`, which is still alive.
    Some(
        unsafe { CStr::from_ptr(grp.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The groups `user` is a member of, with `gid` (what initgroups gives a process).
pub fn group_list(user: &str, gid: u32) -> Vec<u32> {
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

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This process's effective gid and supplementary groups.
pub fn own_groups() -> Vec<u32> {
    // SAFETY: getegid has no preconditions and cannot fail.
    let mut gids = vec![unsafe { libc::getegid() }];
    let mut buf = vec![0 as libc::gid_t; 256];
    // SAFETY: buf has room for the 256 entries the call is told about.
    let n = unsafe { libc::getgroups(256, buf.as_mut_ptr()) };
    if let Ok(n) = usize::try_from(n) {
        gids.extend_from_slice(&buf[..n]);
    }
    gids
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is a plain C struct of pointers and integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Whether `locale` names a locale this system has (LC_ALL can be set to it).
pub fn locale_exists(locale: &str) -> bool {
    let Ok(name) = CString::new(locale) else {
        return false;
    };
    // SAFETY: newlocale only reads `name`; a non-null result is freed at once.
    unsafe {
        let loc = libc::newlocale(libc::LC_ALL_MASK, name.as_ptr(), std::ptr::null_mut());
        if loc.is_null() {
            return false;
        }
        libc::freelocale(loc);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_resolve_by_name_and_by_number() {
        let root = user("root").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(user("#0"), Some(root));
        assert_eq!(user("no-such-user-for-mod-wsgi-rs"), None);
        assert_eq!(group("root"), Some(0));
        assert_eq!(group("#0"), Some(0));
        assert_eq!(group("no-such-group-for-mod-wsgi-rs"), None);
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert!(group_list("root", 0).contains(&0));
        assert!(own_groups().contains(&0), "the tests run as root");
    }
}
