//! Who Apache's children run as: User/Group when wsgi-express is started as root, and
//! the uid and groups that [`crate::access`] checks the application's files against.

use mod_wsgi_os::identity::{self, Account};

pub use identity::euid;

fn account(name: &str) -> Option<Account> {
    identity::user(name)
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
        Some(g) if identity::group(g).is_some() => g.to_owned(),
        Some(g) => return Err(format!("--group {g}: no such group")),
        None => identity::group_name(acct.gid).unwrap_or_else(|| format!("#{}", acct.gid)),
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
            let gid = identity::group(group)?;
            let mut gids = identity::group_list(user, gid);
            gids.push(gid);
            Some(Identity {
                name: user.clone(),
                uid: acct.uid,
                gids,
            })
        }
        None => {
            let gids = identity::own_groups();
            Some(Identity {
                name: user_name(euid()).unwrap_or_else(|| format!("#{}", euid())),
                uid: euid(),
                gids,
            })
        }
    }
}

pub fn user_name(uid: u32) -> Option<String> {
    identity::user(&format!("#{uid}")).map(|a| a.name)
}
