//! Who a daemon group's processes run as and where they start: the account of `user=`
//! (Apache's otherwise), `group=`, and `home=` or the directory to start in.
#![forbid(unsafe_code)]

use mod_wsgi_os::identity::Account;

/// What `WSGIDaemonProcess` says about identity.
#[derive(Debug, Clone, Copy)]
pub struct GroupIdentity<'a> {
    pub user: Option<&'a Account>,
    pub gid: Option<u32>,
    pub home: Option<&'a str>,
}

/// The resolved identity of a group's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub account: Account,
    pub gid: u32,
    /// Working directory, also put first on sys.path.
    pub home: String,
    /// Whether the process changes into `home`: not when it is only the directory
    /// Apache started from, which the process inherits and its user may not enter.
    pub enter_home: bool,
}

/// `apache` is the account Apache's children run as, `start_dir` the directory Apache
/// was started from, `is_dir` checks a home directory exists.
pub fn run_as(
    group: GroupIdentity<'_>,
    apache: Account,
    start_dir: &str,
    is_dir: impl Fn(&str) -> bool,
) -> RunAs {
    let apache_uid = apache.uid;
    let apache_gid = apache.gid;
    let other_user = group.user.filter(|a| a.uid != apache_uid);
    let account = group.user.cloned().unwrap_or(apache);
    let gid = group.gid.unwrap_or(if group.user.is_some() {
        account.gid
    } else {
        apache_gid
    });
    let home = match (group.home, other_user) {
        (Some(home), _) => home.to_owned(),
        // Accounts like nobody have a home that does not exist; run from / then.
        (None, Some(user)) if is_dir(&user.home) => user.home.clone(),
        (None, Some(_)) => "/".to_owned(),
        (None, None) => start_dir.to_owned(),
    };
    RunAs {
        enter_home: group.home.is_some() || other_user.is_some(),
        account,
        gid,
        home,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, uid: u32, home: &str) -> Account {
        Account {
            name: name.to_owned(),
            uid,
            gid: uid + 1000,
            home: home.to_owned(),
        }
    }

    #[test]
    fn without_user_or_home_the_group_runs_as_apache_where_apache_started() {
        let none = GroupIdentity {
            user: None,
            gid: None,
            home: None,
        };
        let r = run_as(
            none,
            account("www-data", 33, "/var/www"),
            "/root/checkout",
            |_| true,
        );
        assert_eq!((r.account.uid, r.gid), (33, 1033));
        assert_eq!(r.home, "/root/checkout");
        assert!(
            !r.enter_home,
            "the start directory is inherited, not entered"
        );
    }

    #[test]
    fn another_user_starts_in_its_home_or_the_root() {
        let tenant = account("shop", 1001, "/home/shop");
        let group = GroupIdentity {
            user: Some(&tenant),
            gid: None,
            home: None,
        };
        let r = run_as(group, account("www-data", 33, "/var/www"), "/", |_| true);
        assert_eq!(
            (r.account.uid, r.gid, r.home.as_str()),
            (1001, 2001, "/home/shop")
        );
        assert!(r.enter_home);
        let r = run_as(group, account("www-data", 33, "/var/www"), "/", |_| false);
        assert_eq!(r.home, "/");
    }

    #[test]
    fn home_and_group_options_win() {
        let tenant = account("shop", 1001, "/home/shop");
        let group = GroupIdentity {
            user: Some(&tenant),
            gid: Some(50),
            home: Some("/srv/shop"),
        };
        let r = run_as(group, account("www-data", 33, "/var/www"), "/", |_| true);
        assert_eq!(
            (r.gid, r.home.as_str(), r.enter_home),
            (50, "/srv/shop", true)
        );
    }
}
