//! Inside one daemon process: start Python, run the preloads, then accept connections on
//! a tokio loop and hand each request to a pool of Python worker threads, until a signal
//! or a recycling policy stops the process; in-flight requests are drained first.
#![forbid(unsafe_code)]

use super::group::DaemonGroup;
use super::worker::{Job, Shared, StopKind};
use crate::python;
use mod_wsgi_wire::{self as wire, Decoder, ErrorKind, Frame};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

/// Largest request head accepted (environ included).
const MAX_HEAD: usize = 16 * 1024 * 1024;

/// Serves until told to stop; returns the process exit code.
pub fn run(group: Arc<DaemonGroup>) -> i32 {
    let name = group.spec.name.clone();
    if let Err(e) = python::initialize(group.python.clone()) {
        tracing::error!("WSGI0102: daemon process of group '{name}': {e}");
        return 1;
    }
    preload(&group);
    let shared = Shared::new(group.clone());
    let workers = super::worker::start(&shared);
    let monitor = match super::worker::start_monitor(&shared) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(
                "WSGI0102: daemon process of group '{name}': cannot start its monitor thread: {e}"
            );
            return 1;
        }
    };
    tracing::info!(
        "WSGI0100: daemon process {} of group '{name}' serving ({} threads)",
        std::process::id(),
        group.spec.threads
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("WSGI0102: daemon process of group '{name}': cannot start tokio: {e}");
            return 1;
        }
    };
    runtime.block_on(serve(shared.clone()));
    shared.close_queue();
    let stop = shared.stop_state();
    let drained = shared.is_idle();
    if drained {
        for w in workers {
            let _ = w.join();
        }
        let _ = monitor.join();
        python::run_exit_handlers();
    }
    tracing::info!(
        "WSGI0106: daemon process {} of group '{name}' exiting ({}{})",
        std::process::id(),
        stop.map_or("stopped", |s| s.reason),
        if drained {
            ""
        } else {
            "; requests still running were cut off"
        }
    );
    0
}

fn preload(group: &DaemonGroup) {
    for p in &group.preloads {
        let mtime = std::fs::metadata(&p.script)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_micros() as f64 / 1_000_000.0);
        let loaded = python::with_interpreter(&p.application_group, |py, interp| {
            python::preload_script(py, interp, &p.script, mtime).map_err(|e| e.to_string())
        });
        let failure = match loaded {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => e.to_string(),
        };
        tracing::error!(
            "WSGI0103: preloading '{}' into group '{}' failed: {failure}",
            p.script.display(),
            group.spec.name
        );
    }
}

async fn serve(shared: Arc<Shared>) {
    let group = shared.group.clone();
    let std_listener = match super::socket::listener_from_fd(group.listener_fd) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("WSGI0102: group '{}': bad listener: {e}", group.spec.name);
            return;
        }
    };
    let listener = match tokio::net::UnixListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("WSGI0102: group '{}': bad listener: {e}", group.spec.name);
            return;
        }
    };
    let signals = [
        (
            SignalKind::terminate(),
            StopKind::Immediate,
            "shutdown signal",
        ),
        (
            SignalKind::interrupt(),
            StopKind::Immediate,
            "shutdown signal",
        ),
        (
            SignalKind::user_defined1(),
            StopKind::Graceful,
            "graceful signal",
        ),
        (
            SignalKind::from_raw(libc::SIGXCPU),
            StopKind::Graceful,
            "cpu-time-limit",
        ),
    ];
    for (kind, stop, reason) in signals {
        match signal(kind) {
            Ok(mut s) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        shared.request_stop(reason, stop);
                    }
                });
            }
            Err(e) => tracing::warn!("WSGI0107: cannot watch signal: {e}"),
        }
    }
    loop {
        let slot = tokio::select! {
            biased;
            () = shared.stopped.notified() => break,
            slot = shared.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        tokio::select! {
            biased;
            () = shared.stopped.notified() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Counted until queued, so a stopping process waits for it.
                    shared.head_started();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        read_head(shared.clone(), stream, slot).await;
                        shared.head_finished();
                    });
                }
                Err(e) => {
                    tracing::error!("WSGI0108: accept failed in group '{}': {e}", group.spec.name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
        if shared.stop_state().is_some() {
            break;
        }
    }
    drop(listener);
    let Some(stop) = shared.stop_state() else {
        return;
    };
    let spec = &group.spec;
    let grace = match stop.kind {
        StopKind::Graceful
            if stop.reason == "graceful signal" && !spec.eviction_timeout.is_zero() =>
        {
            spec.eviction_timeout
        }
        StopKind::Graceful => spec.graceful_timeout,
        StopKind::Immediate => spec.shutdown_timeout,
    };
    let deadline = Instant::now() + grace;
    while !shared.is_idle() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads and checks the request head, then queues the request for a worker thread.
async fn read_head(
    shared: Arc<Shared>,
    mut stream: tokio::net::UnixStream,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let group = &shared.group;
    let mut decoder = Decoder::new(MAX_HEAD);
    let mut buf = vec![0u8; 16 * 1024];
    let timeout = group.socket_timeout;
    let head = tokio::time::timeout(timeout, async {
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::RequestHead(head))) => return Ok(head),
                Ok(Some(other)) => {
                    return Err(format!("expected a request head, got {:?}", other.kind()));
                }
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            match stream.read(&mut buf).await {
                Ok(0) => return Err("connection closed before the request head".to_owned()),
                Ok(n) => decoder.push(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            tracing::error!(
                "WSGI0104: group '{}': refused a connection: {e}",
                group.spec.name
            );
            return;
        }
        Err(_) => {
            tracing::error!(
                "WSGI0104: group '{}': no request head within {:?}",
                group.spec.name,
                timeout
            );
            return;
        }
    };
    if !group.accepts_secret(&head.secret) {
        tracing::error!(
            "WSGI0105: group '{}': refused a request without this server's secret (another local process tried to talk to the daemon socket?)",
            group.spec.name
        );
        let mut out = Vec::new();
        wire::encode(
            &Frame::Error(ErrorKind::Refused, "bad secret".into()),
            &mut out,
        );
        let _ = stream.write_all(&out).await;
        return;
    }
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("WSGI0108: group '{}': {e}", group.spec.name);
            return;
        }
    };
    shared.push(Job {
        stream,
        head,
        decoder,
        slot,
    });
}
