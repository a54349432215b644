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
    }
}
