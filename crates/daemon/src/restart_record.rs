//! What one generation of the Apache parent leaves to the next across a restart (the
//! module is unloaded and loaded again in the same process): the daemon sockets kept
//! open with their secrets, the daemon processes left serving for the new generation to
//! retire, and the shared mappings (stores, bus, metrics) to take over. It is kept as
//! text in the process pool's userdata; this is its one typed, versioned form.
//!
//! A record of another version, or a line that does not parse, is dropped: the next
//! generation then starts those things afresh, which is always safe.
#![forbid(unsafe_code)]

use super::supervisor::HandedOver;
use std::path::PathBuf;

/// Bumped whenever the text form changes.
pub const VERSION: u32 = 1;
const HEADER: &str = "mod_wsgi_rs restart record";

/// A daemon group's listening socket kept open across a graceful restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSocket {
    pub path: PathBuf,
    pub fd: i32,
    pub secret: [u8; 32],
}

/// A shared mapping of the previous generation, by name, size and backing file ("" for
/// none), at `address` in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMapping {
    pub name: String,
    pub size: usize,
    pub file: String,
    pub address: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartRecord {
    pub sockets: Vec<KeptSocket>,
    /// In the order the next generation takes them over (`supervisor::handover_order`).
    pub handover: Vec<HandedOver>,
    pub mappings: Vec<KeptMapping>,
    /// The server metrics' words: (address, count).
    pub metrics: Option<(usize, usize)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn text(hexed: &str) -> Option<String> {
    String::from_utf8(unhex(hexed)?).ok()
}

impl RestartRecord {
    /// The text form: a header line with the version, then one line per item, fields
    /// separated by tabs, paths and names hex-encoded (they may hold any byte).
    pub fn encode(&self) -> String {
        use std::os::unix::ffi::OsStrExt;
        let mut out = format!("{HEADER} {VERSION}\n");
        for s in &self.sockets {
            out.push_str(&format!(
                "socket\t{}\t{}\t{}\n",
                hex(s.path.as_os_str().as_bytes()),
                s.fd,
                hex(&s.secret)
            ));
        }
        for h in &self.handover {
            out.push_str(&format!(
                "handover\t{}\t{}\t{}\n",
                hex(h.group.as_bytes()),
                h.pid,
                u8::from(h.last)
            ));
        }
        for m in &self.mappings {
            out.push_str(&format!(
                "mapping\t{}\t{}\t{}\t{}\n",
                hex(m.name.as_bytes()),
                m.size,
                hex(m.file.as_bytes()),
                m.address
            ));
        }
        if let Some((address, count)) = self.metrics {
            out.push_str(&format!("metrics\t{address}\t{count}\n"));
        }
        out
    }

    pub fn decode(input: &str) -> RestartRecord {
        let mut lines = input.lines();
        let version = lines
            .next()
            .and_then(|l| l.strip_prefix(HEADER))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let mut record = RestartRecord::default();
        if version != Some(VERSION) {
            return record;
        }
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["socket", path, fd, secret] => {
                    use std::os::unix::ffi::OsStringExt;
                    let parsed = (|| {
                        Some(KeptSocket {
                            path: PathBuf::from(std::ffi::OsString::from_vec(unhex(path)?)),
                            fd: fd.parse().ok()?,
                            secret: unhex(secret)?.try_into().ok()?,
                        })
                    })();
                    record.sockets.extend(parsed);
                }
                ["handover", group, pid, last] => {
                    let parsed = (|| {
                        Some(HandedOver {
                            group: text(group)?,
                            pid: pid.parse().ok()?,
                            last: *last == "1",
                        })
                    })();
                    record.handover.extend(parsed);
                }
                ["mapping", name, size, file, address] => {
                    let parsed = (|| {
                        Some(KeptMapping {
                            name: text(name)?,
                            size: size.parse().ok()?,
                            file: text(file)?,
                            address: address.parse().ok()?,
                        })
                    })();
                    record.mappings.extend(parsed);
                }
                ["metrics", address, count] => {
                    record.metrics = address.parse().ok().zip(count.parse().ok());
                }
                _ => {}
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RestartRecord {
        RestartRecord {
            sockets: vec![KeptSocket {
                path: PathBuf::from("/run/apache2/wsgi.1.2.tab\there.sock"),
                fd: 7,
                secret: [0xab; 32],
            }],
            handover: vec![
                HandedOver {
                    group: "site:8000".into(),
                    pid: 42,
                    last: false,
                },
                HandedOver {
                    group: "new\nline".into(),
                    pid: 43,
                    last: true,
                },
            ],
            mappings: vec![
                KeptMapping {
                    name: String::new(),
                    size: 1 << 20,
                    file: String::new(),
                    address: 0x7f00_0000_0000,
                },
                KeptMapping {
                    name: "sessions".into(),
                    size: 64 << 20,
                    file: "/var/lib/app/s.store".into(),
                    address: 0x7f00_1000_0000,
                },
            ],
            metrics: Some((0x7f00_2000_0000, 9000)),
        }
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let record = full();
        assert_eq!(RestartRecord::decode(&record.encode()), record);
        let empty = RestartRecord::default();
        assert_eq!(RestartRecord::decode(&empty.encode()), empty);
    }

    #[test]
    fn another_version_or_no_record_keeps_nothing() {
        let text = full().encode().replacen(" 1\n", " 2\n", 1);
        assert_eq!(RestartRecord::decode(&text), RestartRecord::default());
        assert_eq!(RestartRecord::decode(""), RestartRecord::default());
        // The earlier untyped lines ("path\tfd\tsecret") are not a record.
        assert_eq!(
            RestartRecord::decode("/run/x.sock\t7\tabab\n"),
            RestartRecord::default()
        );
    }

    #[test]
    fn a_damaged_line_is_dropped_and_the_rest_kept() {
        let mut text = full().encode();
        text.push_str("socket\tzz\t7\tab\n");
        text.push_str("handover\t61\tnot-a-pid\t0\n");
        text.push_str("mapping\t61\t1\t\n");
        text.push_str("something new\n");
        assert_eq!(RestartRecord::decode(&text), full());
    }
}
