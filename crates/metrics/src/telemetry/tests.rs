//! The datagrams read back with a decoder written from the ingester's rules (type tags,
//! lengths), checking the fields and their order against mod_wsgi 6.1's encoder.

use super::*;
use crate::{Baseline, Phase, RequestSample, ThreadStats};

#[derive(Debug, Clone, PartialEq)]
enum Value {
    U64(u64),
    F64(f64),
    Bytes(Vec<u8>),
    I32s(Vec<i32>),
    F64s(Vec<f64>),
}

/// (kind, pid, seq, fields in order).
fn decode(b: &[u8]) -> (u8, u32, u32, Vec<(u16, Value)>) {
    assert_eq!(&b[..5], b"WSGI\x01");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let mut fields = Vec::new();
    let mut o = HEADER_LEN;
    while o < b.len() {
        let (id, tag) = (u16_at(o), b[o + 2]);
        o += 3;
        let value = match tag {
            1 => Value::U64(u64_at(o)),
            2 => Value::F64(f64::from_bits(u64_at(o))),
            4..=6 => {
                let n = usize::from(u16_at(o));
                o += 2;
                match tag {
                    4 => Value::Bytes(b[o..o + n].to_vec()),
                    5 => Value::I32s((0..n).map(|i| u32_at(o + 4 * i) as i32).collect()),
                    _ => Value::F64s((0..n).map(|i| f64::from_bits(u64_at(o + 8 * i))).collect()),
                }
            }
            t => panic!("tag {t}"),
        };
        o += match &value {
            Value::U64(_) | Value::F64(_) => 8,
            Value::Bytes(v) => v.len(),
            Value::I32s(v) => 4 * v.len(),
            Value::F64s(v) => 8 * v.len(),
        };
        fields.push((id, value));
    }
    assert_eq!(o, b.len());
    (b[5], u32_at(8), u32_at(12), fields)
}

fn identity() -> Identity {
    Identity {
        pid: 42,
        parent_pid: 7,
        hostname: "web1".into(),
        process_group: String::new(),
        mod_wsgi_version: "6.1.1".into(),
        python_version: "3.11.7".into(),
        apache_version: "Apache/2.4.62".into(),
        mpm_name: "event".into(),
        switch_interval: 0.005,
    }
}

fn report(daemon: bool) -> crate::PhaseReport {
    let a = ThreadStats::new(1);
    let b = ThreadStats::new(2);
    let mut s = RequestSample {
        status: 200,
        counters: [1, 10, 1, 100, 2],
        cpu_us: 1500,
        ..RequestSample::default()
    };
    s.phases_us[Phase::Server as usize] = 1_000;
    s.phases_us[Phase::Application as usize] = 3_000;
    s.phases_us[Phase::Request as usize] = 4_000;
    if daemon {
        s.phases_us[Phase::Queue as usize] = 200;
    }
    a.begin(1_000_000);
    a.finish(&s, 1_004_000);
    b.begin(1_500_000);
    Baseline::default().take(&[&a, &b], 2_000_000)
}

#[test]
fn the_periodic_sample_has_mod_wsgi_6s_fields_in_its_order() {
    let r = report(false);
    let tick = Tick {
        report: &r,
        sample_period: 2.0,
        interval: 1.0,
        slow_threshold: 0.0,
        cpu_user: 0.5,
        cpu_system: 0.25,
        memory_rss: 1 << 20,
        memory_max_rss: 2 << 20,
        threads_maximum: 4,
        daemon: false,
    };
    let (kind, pid, seq, f) = decode(&encode_tick(&identity(), &tick, 9, 100.0));
    assert_eq!((kind, pid, seq), (Kind::Request as u8, 42, 9));
    let ids: Vec<u16> = f.iter().map(|(id, _)| *id).collect();
    let mut expected = vec![
        1, 2, 3, 4, 5, 7, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41,
    ];
    expected.extend([50, 51, 52, 60, 63, 64, 65, 66, 67]);
    expected.extend([70, 80, 73, 83, 74, 84, 75, 85, 76, 86, 77, 87]);
    expected.extend([
        90, 93, 94, 95, 96, 97, 100, 101, 102, 103, 120, 121, 122, 123, 124,
    ]);
    expected.extend([110, 111, 112, 113, 114]);
    assert_eq!(
        ids, expected,
        "no process group in embedded mode, no queue/daemon"
    );
    let get = |id: u16| f.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    assert_eq!(get(20), Value::U64(1));
    assert_eq!(get(21), Value::F64(0.5));
    // Thread 1 busy 4 ms, thread 2 running for 0.5 s: 0.504 s of 2 s x 4 threads.
    assert_eq!(get(22), Value::F64(0.504 / 2.0 / 4.0));
    assert_eq!(get(32), Value::F64(0.375));
    assert_eq!(
        (get(50), get(51), get(52)),
        (Value::U64(4), Value::U64(2), Value::U64(2))
    );
    assert_eq!(get(63), Value::F64(0.003));
    assert_eq!((get(73), get(83)), (Value::F64(0.003), Value::F64(0.003)));
    let Value::I32s(buckets) = get(93) else {
        panic!()
    };
    assert_eq!((buckets.len(), buckets[6]), (65, 1), "3 ms");
    assert_eq!(
        (get(100), get(102), get(103)),
        (Value::U64(10), Value::U64(100), Value::U64(2))
    );
    assert_eq!(get(121), Value::U64(1));
    assert_eq!(get(110), Value::I32s(vec![1, 0, 0, 0]));
    assert_eq!(get(111), Value::F64s(vec![0.004, 0.5, 0.0, 0.0]));
    assert_eq!(get(112), Value::F64s(vec![0.0015, 0.0, 0.0, 0.0]));
    assert_eq!(get(113), Value::F64s(vec![0.0, 0.5, 0.0, 0.0]));
    assert_eq!(get(114), Value::F64s(vec![0.004, 0.0, 0.0, 0.0]));
}

#[test]
fn a_daemon_sample_adds_queue_and_daemon_phases_when_requests_finished() {
    let r = report(true);
    let mut id = identity();
    id.process_group = "app".into();
    id.switch_interval = 0.0;
    let tick = Tick {
        report: &r,
        sample_period: 1.0,
        interval: 1.0,
        slow_threshold: 2.5,
        cpu_user: 0.0,
        cpu_system: 0.0,
        memory_rss: 0,
        memory_max_rss: 0,
        threads_maximum: 2,
        daemon: true,
    };
    let (_, _, _, f) = decode(&encode_tick(&id, &tick, 1, 0.0));
    let ids: Vec<u16> = f.iter().map(|(id, _)| *id).collect();
    assert!(ids.contains(&6) && !ids.contains(&13));
    let pos = |id: u16| ids.iter().position(|i| *i == id).unwrap();
    assert!(pos(67) < pos(61) && pos(61) < pos(62) && pos(62) < pos(70));
    assert!(pos(87) < pos(71) && pos(71) < pos(81) && pos(72) < pos(82));
    assert!(pos(93) < pos(91) && pos(92) < pos(94));
    let idle = Baseline::default().take(&[], 0);
    let tick = Tick {
        report: &idle,
        ..tick
    };
    let (_, _, _, f) = decode(&encode_tick(&id, &tick, 2, 0.0));
    assert!(!f.iter().any(|(id, _)| [61, 62, 70, 91, 92].contains(id)));
}

#[test]
fn lifecycle_and_gc_datagrams() {
    let id = identity();
    let (kind, _, _, f) = decode(&encode_started(&id, 1, 5.0));
    assert_eq!(kind, 5);
    assert_eq!(
        f.iter().map(|x| x.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 7, 13]
    );
    let (kind, _, _, f) = decode(&encode_stopping(&id, "", 3, 2, 6.0));
    assert_eq!((kind, f.len()), (6, 2), "an empty reason is left out");
    let ending = Ending {
        reason: "shutdown_signal",
        uptime: 10.0,
        lifetime_requests: 5,
        active: 0,
        graceful: true,
    };
    let (kind, _, _, f) = decode(&encode_stopped(&id, &ending, 3, 7.0));
    assert_eq!(kind, 7);
    assert_eq!(f[1], (130, Value::Bytes(b"shutdown_signal".to_vec())));
    assert_eq!(f.last().unwrap(), &(135, Value::U64(1)));
    let (kind, _, _, f) = decode(&encode_gc_snapshot(42, &[3; 18], "", 4, 8.0));
    assert_eq!((kind, f.len(), f[17].0), (8, 18, 317));
    let event = GcEvent {
        start: 1.0,
        duration: 0.001,
        generation: 2,
        collected: 10,
        uncollectable: 0,
    };
    let (kind, _, _, f) = decode(&encode_gc_event(42, &event, "app", 5, 9.0));
    assert_eq!((kind, f.len()), (9, 6));
    assert_eq!(f[5], (8, Value::Bytes(b"app".to_vec())));
}

#[test]
fn a_slow_request_record() {
    let r = SlowRequest {
        completed: false,
        start_us: 1_000_000,
        duration_us: 3_000_000,
        thread_id: 2,
        server_pid: 99,
        instants: Instants {
            request_start: 1_000_000,
            application_start: 1_000_500,
            ..Instants::default()
        },
        active_at_start: 1,
        who: RequestIdentity {
            method: b"GET".to_vec(),
            scheme: b"http".to_vec(),
            path_info: b"/slow".to_vec(),
            ..RequestIdentity::default()
        },
        ..SlowRequest::default()
    };
    let (kind, _, _, f) = decode(&encode_slow(42, &r, 4_000_000, 6, 4.0));
    assert_eq!(kind, 4);
    let ids: Vec<u16> = f.iter().map(|x| x.0).collect();
    let mut expected = vec![200, 201, 202, 203, 205, 230, 231, 232, 233, 250, 251];
    expected.extend([
        220, 221, 222, 223, 224, 225, 234, 235, 260, 261, 240, 210, 211, 214,
    ]);
    assert_eq!(ids, expected);
    assert_eq!(f[2].1, Value::F64(3.0));
    assert_eq!(f[11].1, Value::F64(0.0005));
    assert_eq!(f[14].1, Value::F64(2.9995));
}
