//! Session affinity (`session-affinity=COOKIE`, our extension): which of a group's
//! processes (lanes) a request goes to. A lane is a process slot: its socket is served by
//! that slot's process and, after recycling, by its successor, so a pinned client follows
//! the slot. Pure code; the Apache handler reads the cookie and sets it.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The lane named by cookie `name` in a `Cookie` header, if it is one of `lanes`.
pub fn pinned_lane(cookie_header: &str, name: &str, lanes: usize) -> Option<usize> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().trim_matches('"').parse::<usize>().ok())
        .filter(|lane| *lane < lanes)
}

static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// A lane for a client that is not pinned yet: round robin, each Apache child starting
/// at its own place so that children do not all begin with lane 0.
pub fn next_lane(lanes: usize) -> usize {
    let lanes = lanes.max(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let n = if n == usize::MAX {
        let start = std::process::id() as usize;
        NEXT.store(start.wrapping_add(1), Ordering::Relaxed);
        start
    } else {
        n
    };
    n % lanes
}

/// The Set-Cookie value that pins a client to `lane`.
pub fn cookie(name: &str, lane: usize) -> String {
    format!("{name}={lane}; Path=/; HttpOnly; SameSite=Lax")
}

/// The lane a request goes to: the one its `Cookie` header pins with cookie `name`, else
/// the next in turn, with the Set-Cookie value that pins the client to it.
pub fn lane_for(cookie_header: Option<&str>, name: &str, lanes: usize) -> (usize, Option<String>) {
    match cookie_header.and_then(|v| pinned_lane(v, name, lanes)) {
        Some(lane) => (lane, None),
        None => {
            let lane = next_lane(lanes);
            (lane, Some(cookie(name, lane)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_client_keeps_its_lane_and_gets_no_cookie() {
        assert_eq!(lane_for(Some("a=b; route=2"), "route", 4), (2, None));
    }

    #[test]
    fn an_unpinned_client_is_given_a_lane_and_its_cookie() {
        for header in [None, Some(""), Some("route=9"), Some("other=1")] {
            let (lane, set) = lane_for(header, "route", 4);
            assert!(lane < 4);
            assert_eq!(set, Some(cookie("route", lane)));
        }
    }

    #[test]
    fn finds_the_named_cookie_among_others() {
        assert_eq!(pinned_lane("a=1; PIN=2; b=3", "PIN", 3), Some(2));
        assert_eq!(pinned_lane("PIN=\"1\"", "PIN", 3), Some(1));
        assert_eq!(pinned_lane("XPIN=1", "PIN", 3), None);
    }

    #[test]
    fn ignores_lanes_that_do_not_exist_and_garbage() {
        assert_eq!(pinned_lane("PIN=3", "PIN", 3), None, "processes shrank");
        assert_eq!(pinned_lane("PIN=-1", "PIN", 3), None);
        assert_eq!(pinned_lane("PIN=x", "PIN", 3), None);
        assert_eq!(pinned_lane("", "PIN", 3), None);
        assert_eq!(pinned_lane("PIN", "PIN", 3), None);
    }

    #[test]
    fn round_robin_covers_every_lane() {
        let seen: std::collections::HashSet<usize> = (0..6).map(|_| next_lane(3)).collect();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|l| *l < 3));
    }

    #[test]
    fn cookie_is_scoped_to_the_site_and_not_scriptable() {
        assert_eq!(cookie("PIN", 2), "PIN=2; Path=/; HttpOnly; SameSite=Lax");
    }
}
