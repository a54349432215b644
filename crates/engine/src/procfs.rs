//! What the kernel says about a process, read from /proc.
#![forbid(unsafe_code)]

/// The fields of `/proc/<pid>/stat` after the command name ("self" for this process):
/// index 0 is the state (the man page's field 3), 1 the parent pid, and so on.
pub fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// A "<field>: N kB" line of /proc/<pid>/status, in bytes.
pub fn status_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// This process's argument area `[arg_start, arg_end)` as the kernel reports it
/// (/proc/self/stat fields 48 and 49): the bytes `ps` shows as the command line.
pub fn argument_area() -> Option<(usize, usize)> {
    let fields = stat_fields("self")?;
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_readable() {
        let fields = stat_fields("self").expect("/proc/self/stat");
        assert_eq!(
            fields[0].len(),
            1,
            "the state letter comes first: {fields:?}"
        );
        let (start, end) = argument_area().expect("argument area");
        assert!(end > start);
        assert!(status_bytes("self", "VmRSS").unwrap() > 0);
        assert_eq!(status_bytes("self", "NoSuchField"), None);
    }
}
