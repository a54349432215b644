//! Whether the account Apache's children and daemons run as can reach the application's
//! files, checked before Apache starts: a private home directory (mode 700, Debian 12's
//! default) on the way otherwise shows as a 403 or a failed import per request.
#![forbid(unsafe_code)]

use crate::users::Identity;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the account must be able to do with the path itself (every directory above it
/// needs search permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A file it reads (the WSGI script, a file served by --url-alias).
    Read,
    /// A directory it enters (working directory, document root, server root).
    Search,
    /// A directory Python imports from, which it must list too.
    ListAndSearch,
}

const R: u32 = 4;
const X: u32 = 1;

/// The first path on the way that refuses the account, and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub path: PathBuf,
    pub mode: u32,
    pub owner: u32,
    /// The permission class the account falls in: 'u', 'g' or 'o'.
    pub class: char,
    /// The bits it lacks: 4 (read), 1 (search) or both.
    pub missing: u32,
}

/// The class (owner, group, other) the kernel checks `who` against, and its bits.
fn granted(mode: u32, owner: u32, group: u32, who: &Identity) -> (char, u32) {
    if who.uid == owner {
        ('u', (mode >> 6) & 7)
    } else if who.gids.contains(&group) {
        ('g', (mode >> 3) & 7)
    } else {
        ('o', mode & 7)
    }
}

fn check(
    path: &Path,
    mode: u32,
    owner: u32,
    group: u32,
    who: &Identity,
    need: u32,
) -> Option<Blocked> {
    let (class, bits) = granted(mode, owner, group, who);
    let missing = need & !bits;
    (missing != 0).then(|| Blocked {
        path: path.to_owned(),
        mode: mode & 0o7777,
        owner,
        class,
        missing,
    })
}

/// Why `who` cannot reach `path` (absolute), or None. Parts of the path that do not exist
/// yet (a server root about to be created) are not judged.
pub fn blocked(path: &Path, who: &Identity, need: Need) -> Option<Blocked> {
    if who.uid == 0 {
        return None;
    }
    let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
    dirs.reverse();
    for dir in dirs {
        let meta = std::fs::metadata(dir).ok()?;
        if let Some(b) = check(dir, meta.mode(), meta.uid(), meta.gid(), who, X) {
            return Some(b);
        }
    }
    let meta = std::fs::metadata(path).ok()?;
    let bits = match need {
        Need::Read => R,
        Need::Search => X,
        Need::ListAndSearch => R | X,
    };
    check(path, meta.mode(), meta.uid(), meta.gid(), who, bits)
}

impl Blocked {
    /// One line saying what is blocked, by what, and how to fix it. `what` names the
    /// target ("the WSGI script /srv/app.wsgi"); `switch_user` offers --user/--group
    /// (only possible when wsgi-express runs as root).
    pub fn explain(
        &self,
        what: &str,
        who: &Identity,
        owner_name: &str,
        switch_user: bool,
    ) -> String {
        let lacks = match self.missing {
            R => "is not readable by it",
            X => "does not let it in",
            _ => "does not let it list or enter it",
        };
        let perms = match self.missing {
            R => "r",
            X => "x",
            _ => "rx",
        };
        let others = if switch_user {
            ", or run with --user/--group of an account that can read it"
        } else {
            ""
        };
        format!(
            "user '{}' cannot reach {what}: {} (mode {:o}, owner {owner_name}) {lacks}; \
             fix with `chmod {}+{perms} {}`{others}, or move the application to a directory \
             it can reach",
            who.name,
            self.path.display(),
            self.mode,
            self.class,
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn www_data() -> Identity {
        Identity {
            name: "www-data".into(),
            uid: 33,
            gids: vec![33, 100],
        }
    }

    #[test]
    fn the_class_the_kernel_checks_decides() {
        let who = www_data();
        let p = Path::new("/home/alice");
        // Other: 0o700 owned by alice (1000:1000) lacks o+x.
        let b = check(p, 0o40700, 1000, 1000, &who, X).unwrap();
        assert_eq!((b.class, b.missing, b.mode), ('o', X, 0o700));
        // Group: in group 100, 0o750 lets it in; other bits do not matter.
        assert_eq!(check(p, 0o750, 1000, 100, &who, X), None);
        // Owner bits only apply to the owner, even when others have more.
        let b = check(p, 0o077, 33, 33, &who, X).unwrap();
        assert_eq!(b.class, 'u');
        // A file needs read; a package directory read and search.
        assert_eq!(check(p, 0o640, 0, 0, &who, R).unwrap().missing, R);
        assert_eq!(check(p, 0o711, 0, 0, &who, R | X).unwrap().missing, R);
    }

    #[test]
    fn the_message_names_the_directory_and_the_fix() {
        let b = check(Path::new("/home/alice"), 0o700, 1000, 1000, &www_data(), X).unwrap();
        let text = b.explain(
            "the WSGI script /home/alice/app.wsgi",
            &www_data(),
            "alice",
            true,
        );
        assert_eq!(
            text,
            "user 'www-data' cannot reach the WSGI script /home/alice/app.wsgi: /home/alice \
             (mode 700, owner alice) does not let it in; fix with `chmod o+x /home/alice`, or \
             run with --user/--group of an account that can read it, or move the application \
             to a directory it can reach"
        );
    }
}
