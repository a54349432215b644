//! Daemon process groups from the Apache parent's side: validating them (check_config),
//! binding their sockets and forking them (post_config), supervising them as Apache
//! "other children" (respawn with crash-loop backoff, successors for recycling woken by
//! the recycling bell), and ending a generation: handed over to the next one on a
//! graceful restart, terminated on a hard restart or stop.

use super::config::{DaemonDefinition, ServerConfig, server_config};
use super::pool::{read_record, update_record};
use super::sys;
use crate::daemon::supervisor::{self, Action, Death, HandedOver};
use crate::daemon::{self, ChildSetup, DaemonGroup, setup};
use mod_wsgi_os::identity;
use mod_wsgi_store::{GroupHealth, SharedWords};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_void};
use std::os::raw::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set when Apache announces a hard restart or a stop (APR_OC_REASON_RESTART): daemons
/// are then terminated and their sockets removed rather than drained and kept.
static HARD_STOP: AtomicBool = AtomicBool::new(false);

/// One supervised daemon process: lives in pconf for the generation. Slots come in
/// pairs (partners): when the running process asks for a replacement (its flag in the
/// shared mapping), its partner is forked as the successor; the running one is then
/// `retiring` until it exits, and is not replaced when it does.
struct Slot {
    proc_: sys::apr_proc_t,
    group: Arc<DaemonGroup>,
    started: Instant,
    crashes: u32,
    pconf: *mut sys::apr_pool_t,
    partner: *mut Slot,
    /// The pair's "replace me" flag, in the generation's shared mapping.
    flag: &'static AtomicU64,
    retiring: bool,
    /// A process of the previous generation (graceful restart) that this slot's process
    /// retires once ready, as a successor does.
    handover: Option<i32>,
    /// Index of the pair in its group (both partners share it): with session affinity,
    /// the lane socket the process serves.
    lane: usize,
    /// Index of this slot in its group (`2 * lane` and `2 * lane + 1`), for its health word.
    index: usize,
}

/// The generation's recycling bell (`daemon::spawn_bell`), supervised as an other child:
/// its exit makes the parent look at the recycling flags at once.
struct Bell {
    proc_: sys::apr_proc_t,
    flags: Vec<&'static AtomicU64>,
    pconf: *mut sys::apr_pool_t,
}

/// Every slot of this generation, for the cleanup that stops them.
struct Generation {
    slots: Vec<*mut Slot>,
    bell: *mut Bell,
    groups: Vec<Arc<DaemonGroup>>,
    process_pool: *mut sys::apr_pool_t,
    /// Each group's recycling flags and health words (`DaemonGroup::control`).
    controls: Vec<SharedFlags>,
}

/// Anonymous shared memory made before the daemons are forked: one flag word per slot
/// pair, written by the daemon, read and cleared by the parent.
struct SharedFlags {
    /// None once unmapped (stop_generation).
    words: Option<SharedWords>,
    flags: &'static [AtomicU64],
}

impl SharedFlags {
    fn new(count: usize) -> Result<SharedFlags, String> {
        let words = SharedWords::anonymous(count)
            .map_err(|e| format!("cannot map shared memory for daemon recycling: {e}"))?;
        // SAFETY: the words stay mapped in every daemon (and the bell) for its whole life.
        // In the parent they are unmapped with the generation (stop_generation), after the
        // slots' and the bell's other-child registrations, their only readers there, are
        // gone; nothing else keeps the 'static reference.
        let flags = unsafe { &*std::ptr::from_ref(words.words()) };
        Ok(SharedFlags {
            words: Some(words),
            flags,
        })
    }
}

/// One server's own configuration, with where it came from.
struct ServerScope {
    config: &'static ServerConfig,
    /// The virtual host's ServerName; None for the main server.
    virtual_host: Option<String>,
}

/// The distinct configurations of the server list (see `servers`).
pub(super) fn server_configs(s: *mut sys::server_rec) -> Vec<&'static ServerConfig> {
    servers(s).into_iter().map(|scope| scope.config).collect()
}

/// The distinct configurations of the server list, main server first. A virtual host
/// without any of this module's directives shares the main server's configuration record
/// (Apache merges only configs a vhost has), so each record is taken once: otherwise
/// the main server's groups would be built twice, each with its own secret.
fn servers(s: *mut sys::server_rec) -> Vec<ServerScope> {
    let mut out: Vec<ServerScope> = Vec::new();
    let mut cur = s;
    while !cur.is_null() {
        // SAFETY: the server list is live for this configuration generation.
        if let Some(config) = unsafe { server_config(cur) }
            && !out.iter().any(|seen| std::ptr::eq(seen.config, config))
        {
            // SAFETY: as above; server_hostname is a pool string or null.
            let virtual_host = unsafe {
                ((*cur).is_virtual != 0).then(|| {
                    let name = (*cur).server_hostname;
                    if name.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(name).to_string_lossy().into_owned()
                    }
                })
            };
            out.push(ServerScope {
                config,
                virtual_host,
            });
        }
        // SAFETY: as above.
        cur = unsafe { (*cur).next };
    }
    out
}

fn socket_prefix(pool: *mut sys::apr_pool_t, main: &ServerConfig) -> String {
    let relative = |p: &str, runtime: bool| -> String {
        let Ok(c) = CString::new(p) else {
            return p.to_owned();
        };
        // SAFETY: pool is live; both functions return pool strings (or null on error).
        let r = unsafe {
            if runtime {
                sys::ap_runtime_dir_relative(pool, c.as_ptr())
            } else {
                sys::ap_server_root_relative(pool, c.as_ptr())
            }
        };
        if r.is_null() {
            return p.to_owned();
        }
        // SAFETY: non-null pool string.
        unsafe { CStr::from_ptr(r) }.to_string_lossy().into_owned()
    };
    match &main.socket_prefix {
        Some(p) => relative(p, false),
        None => relative("wsgi", true),
    }
}

/// Checks what can only be checked once the whole configuration is read. Errors name
/// the directive and, where known, its file and line.
pub fn check(s: *mut sys::server_rec, pool: *mut sys::apr_pool_t) -> Result<(), String> {
    let scopes = servers(s);
    let configs: Vec<&ServerConfig> = scopes.iter().map(|scope| scope.config).collect();
    let Some(main) = configs.first() else {
        return Ok(());
    };
    let defined: Vec<&DaemonDefinition> = configs.iter().flat_map(|c| c.daemons.iter()).collect();
    setup::check_socket_paths(&defined, &socket_prefix(pool, main))?;
    mod_wsgi_config::check_group_references(&configs)
}

/// The sockets a previous generation of this Apache parent left open: path -> (fd, secret).
fn previous_sockets(process_pool: *mut sys::apr_pool_t) -> setup::PreviousSockets {
    setup::previous_sockets(read_record(process_pool).sockets)
}

fn remember_sockets(process_pool: *mut sys::apr_pool_t, groups: &[Arc<DaemonGroup>]) {
    let sockets = setup::kept_sockets(groups);
    update_record(process_pool, |record| record.sockets = sockets);
}

pub(super) fn apache_user() -> (u32, u32, String) {
    // SAFETY: ap_unixd_config is filled by mod_unixd while reading the config and only
    // read afterwards.
    let (uid, gid, name) = unsafe {
        let c = &raw const sys::ap_unixd_config;
        let name = if (*c).user_name.is_null() {
            String::new()
        } else {
            CStr::from_ptr((*c).user_name)
                .to_string_lossy()
                .into_owned()
        };
        ((*c).user_id, (*c).group_id, name)
    };
    (uid, gid, name)
}

/// The largest request head a daemon must accept, from every server's request limits.
fn max_request_head(s: *mut sys::server_rec) -> usize {
    let mut limits = Vec::new();
    let mut cur = s;
    while !cur.is_null() {
        // SAFETY: the server list is live for this configuration generation.
        let server = unsafe { &*cur };
        limits.push(daemon::RequestLimits {
            line: server.limit_req_line,
            fields: server.limit_req_fields,
            field_size: server.limit_req_fieldsize,
        });
        cur = server.next;
    }
    daemon::max_request_head(&limits)
}

/// What every group takes from this Apache parent.
fn parent_facts(s: *mut sys::server_rec) -> setup::ParentFacts {
    let (uid, gid, name) = apache_user();
    setup::ParentFacts {
        apache_account: setup::apache_account(uid, gid, name),
        // SAFETY: s is the live main server; timeout is in microseconds.
        apache_timeout: setup::apache_timeout(unsafe { (*s).timeout }),
        max_request_head: max_request_head(s),
        apache: super::hooks::apache_facts(),
        current_dir: std::env::current_dir().map_or("/".to_owned(), |p| p.display().to_string()),
    }
}

fn close_listeners_in_daemon() {
    // SAFETY: closes Apache's listening sockets in this freshly forked daemon.
    unsafe { sys::ap_close_listeners() };
}

fn child_setup(s: *mut sys::server_rec) -> ChildSetup {
    // SAFETY: the process record and its argv live as long as the process.
    let argv0 = unsafe {
        let process = (*s).process;
        if process.is_null() || (*process).argv.is_null() || (*(*process).argv).is_null() {
            None
        } else {
            let start = *(*process).argv as *mut libc::c_char;
            let own = libc::strlen(start);
            // When argv[0] is the start of the kernel's argument area, the title may use
            // all of it (as setproctitle does), so `ps` shows it whole; the last byte
            // stays the terminating NUL.
            let len = match mod_wsgi_engine::procfs::argument_area() {
                Some((area_start, area_end)) if area_start == start as usize => {
                    area_end - area_start - 1
                }
                _ => own,
            };
            Some((start, len))
        }
    };
    ChildSetup {
        prepare: close_listeners_in_daemon,
        argv0,
        apache_uid: apache_user().0,
    }
}

static SETUP_SERVER: std::sync::atomic::AtomicPtr<sys::server_rec> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn spawn_slot(slot: *mut Slot, delay: Duration, predecessor: Option<i32>) {
    let s = SETUP_SERVER.load(Ordering::Acquire);
    // SAFETY: slot lives in pconf for this generation; only the parent's single thread
    // touches it.
    let slot = unsafe { &mut *slot };
    let lineage = daemon::Lineage {
        replace_flag: slot.flag,
        predecessor,
        lane: slot.lane,
        slot: slot.index,
        failed_starts: slot.crashes,
    };
    match daemon::spawn(&slot.group, delay, &child_setup(s), lineage) {
        Ok(pid) => {
            slot.proc_.pid = pid;
            slot.started = Instant::now() + delay;
            // SAFETY: proc_ and slot live in pconf until the generation ends; APR keeps
            // the pointers and unregisters them through its own pconf cleanup.
            unsafe {
                sys::apr_proc_other_child_register(
                    &mut slot.proc_,
                    Some(maintenance),
                    (slot as *mut Slot).cast(),
                    std::ptr::null_mut(),
                    slot.pconf,
                );
            }
            tracing::info!(
                "WSGI1120: started daemon process {pid} of group '{}'",
                slot.group.spec.name
            );
        }
        Err(e) => tracing::error!(
            "WSGI0024: cannot fork a daemon process of group '{}': {e}",
            slot.group.spec.name
        ),
    }
}

fn mpm_stopping() -> bool {
    let mut state: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    let rv = unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MPM_STATE, &mut state) };
    rv == 0 && state == sys::AP_MPMQ_STOPPING
}

unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    super::trampoline::guard("daemon maintenance", (), || {
        // SAFETY: data is the Slot registered with this callback, alive in pconf.
        let slot = unsafe { &mut *data.cast::<Slot>() };
        match reason {
            sys::APR_OC_REASON_DEATH | sys::APR_OC_REASON_LOST => {
                let pid = slot.proc_.pid;
                slot.proc_.pid = 0;
                // SAFETY: unregistering this slot's own registration; the re-entrant
                // UNREGISTER callback finds pid 0 and does nothing.
                unsafe { sys::apr_proc_other_child_unregister(data) };
                // SAFETY: the partner lives in pconf beside this slot.
                let partner = unsafe { &mut *slot.partner };
                let death = Death {
                    status,
                    lived: slot.started.elapsed(),
                    stopping: mpm_stopping() || HARD_STOP.load(Ordering::Relaxed),
                    was_serving: slot.group.health.clear_slot(slot.index, pid as u32),
                    crashes: slot.crashes,
                    retiring: std::mem::take(&mut slot.retiring),
                    partner_pid: (partner.proc_.pid > 0).then_some(partner.proc_.pid),
                    partner_retiring: partner.retiring,
                    handover_pid: slot.handover.filter(|&pid| is_live_child(pid)),
                };
                let decision = supervisor::on_death(&death);
                let name = &slot.group.spec.name;
                let message =
                    supervisor::death_message(pid, name, status, death.lived, &decision.action);
                if decision.error {
                    tracing::error!("{message}");
                } else {
                    tracing::info!("{message}");
                }
                if let Some(reason) = decision.restart_reason {
                    crate::shared::metrics::record_restart(&slot.group.spec.name, reason);
                }
                match decision.action {
                    Action::Nothing => {}
                    // The successor may already be due for recycling itself.
                    Action::SuccessorServes => start_successor_if_asked(partner),
                    Action::Respawn {
                        delay,
                        crashes,
                        predecessor,
                        start_failed,
                    } => {
                        if start_failed {
                            slot.group.health.mark_start_failed(pid as u32);
                        }
                        slot.crashes = crashes;
                        if !delay.is_zero() {
                            tracing::error!(
                                "WSGI1123: daemon group '{}' is crashing repeatedly ({crashes} times in a row); the next process waits {} s before starting",
                                slot.group.spec.name,
                                delay.as_secs()
                            );
                        }
                        spawn_slot(slot, delay, predecessor);
                    }
                }
            }
            // From the bell or the monitor hook while the process lives.
            sys::APR_OC_REASON_RUNNING => start_successor_if_asked(slot),
            sys::APR_OC_REASON_RESTART => {
                HARD_STOP.store(true, Ordering::Relaxed);
                let pid = slot.proc_.pid;
                if pid > 0 {
                    // SAFETY: signalling our own child.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
            _ => {}
        }
    });
}

/// A live process whose pair's flag is up, and whose partner slot is free, gets its
/// successor: the partner is forked and will retire it once ready.
fn start_successor_if_asked(slot: &mut Slot) {
    // SAFETY: the partner lives in pconf beside this slot.
    let partner = unsafe { &mut *slot.partner };
    if slot.proc_.pid > 0
        && supervisor::wants_successor(
            slot.retiring,
            partner.proc_.pid > 0,
            slot.flag.load(Ordering::Acquire) != 0,
            mpm_stopping() || HARD_STOP.load(Ordering::Relaxed),
        )
        && slot.flag.swap(0, Ordering::AcqRel) != 0
    {
        slot.retiring = true;
        tracing::info!(
            "WSGI1125: starting a replacement for daemon process {} of group '{}'",
            slot.proc_.pid,
            slot.group.spec.name
        );
        spawn_slot(partner, Duration::ZERO, Some(slot.proc_.pid));
    }
}

fn start_bell(bell: *mut Bell) {
    let s = SETUP_SERVER.load(Ordering::Acquire);
    // SAFETY: the bell lives in pconf for this generation; only the parent's single
    // thread touches it.
    let bell = unsafe { &mut *bell };
    let (uid, gid, _) = apache_user();
    match daemon::spawn_bell(&bell.flags, &child_setup(s), (uid, gid)) {
        Ok(pid) => {
            bell.proc_.pid = pid;
            // SAFETY: as for a slot: proc_ and the bell live in pconf until the
            // generation ends, and APR unregisters them through its own pconf cleanup.
            unsafe {
                sys::apr_proc_other_child_register(
                    &mut bell.proc_,
                    Some(bell_rang),
                    (bell as *mut Bell).cast(),
                    std::ptr::null_mut(),
                    bell.pconf,
                );
            }
        }
        Err(e) => tracing::warn!(
            "WSGI1126: cannot fork the daemon recycling bell: {e}; replacements start from the monitor hook (about every 10 s)"
        ),
    }
}

unsafe extern "C" fn bell_rang(reason: c_int, data: *mut c_void, status: c_int) {
    super::trampoline::guard("daemon recycling bell", (), || {
        // SAFETY: data is the Bell registered with this callback, alive in pconf.
        let bell = unsafe { &mut *data.cast::<Bell>() };
        match reason {
            sys::APR_OC_REASON_DEATH | sys::APR_OC_REASON_LOST => {
                bell.proc_.pid = 0;
                // SAFETY: unregistering the bell's own registration; the re-entrant
                // UNREGISTER callback does nothing.
                unsafe { sys::apr_proc_other_child_unregister(data) };
                if mpm_stopping() || HARD_STOP.load(Ordering::Relaxed) {
                    return;
                }
                // The new bell first: a flag raised from here on rings it, and one raised
                // before it looked is answered just below.
                if reason == sys::APR_OC_REASON_DEATH && status == 0 {
                    start_bell(bell);
                } else {
                    tracing::warn!(
                        "WSGI1126: the daemon recycling bell exited with status {status}; replacements start from the monitor hook (about every 10 s)"
                    );
                }
                // SAFETY: in the parent's main loop; walks APR's own other-child list,
                // which no caller up the stack is iterating (alert returns after us).
                unsafe { sys::apr_proc_other_child_refresh_all(sys::APR_OC_REASON_RUNNING) };
            }
            sys::APR_OC_REASON_RESTART => {
                HARD_STOP.store(true, Ordering::Relaxed);
                if bell.proc_.pid > 0 {
                    // SAFETY: signalling our own child.
                    unsafe { libc::kill(bell.proc_.pid, libc::SIGKILL) };
                }
            }
            _ => {}
        }
    });
}

/// Whether `pid` is a live (not zombie) child of this process.
fn is_live_child(pid: i32) -> bool {
    daemon::is_live_child_of(pid, std::process::id())
}

/// The previous generation's daemons still serving, by group, in the order they should be
/// taken over (processes being replaced last).
fn take_handover(process_pool: *mut sys::apr_pool_t) -> HashMap<String, Vec<i32>> {
    let mut handover = Vec::new();
    update_record(process_pool, |record| {
        handover = std::mem::take(&mut record.handover);
    });
    setup::handover_by_group(handover, is_live_child)
}

/// A process of the previous generation (kept serving across a graceful restart) is
/// registered as an other child of this one, so that its exit is ours to see: otherwise
/// the MPM reaps an unknown pid and logs "AH00488: long lost child came home!".
fn watch_previous_generation(pconf: *mut sys::apr_pool_t, pid: i32) {
    // SAFETY: apr_proc_t is a plain C struct; zero is its unset state.
    let mut proc_: sys::apr_proc_t = unsafe { std::mem::zeroed() };
    proc_.pid = pid;
    // SAFETY: pconf is live; the record lives in it for the generation, and APR removes
    // the registration through its own pconf cleanup.
    unsafe {
        let record = super::pool::into_pool(pconf, proc_);
        sys::apr_proc_other_child_register(
            record,
            Some(previous_generation_event),
            record.cast(),
            std::ptr::null_mut(),
            pconf,
        );
    }
}

unsafe extern "C" fn previous_generation_event(reason: c_int, data: *mut c_void, status: c_int) {
    super::trampoline::guard("previous daemon generation", (), || {
        // SAFETY: data is the apr_proc_t registered with this callback, alive in pconf.
        let proc_ = unsafe { &mut *data.cast::<sys::apr_proc_t>() };
        match reason {
            sys::APR_OC_REASON_DEATH | sys::APR_OC_REASON_LOST => {
                tracing::info!(
                    "WSGI1127: daemon process {} of the previous generation exited with status {status}",
                    proc_.pid
                );
                proc_.pid = 0;
                // SAFETY: removing this record's own registration.
                unsafe { sys::apr_proc_other_child_unregister(data) };
            }
            sys::APR_OC_REASON_RESTART if proc_.pid > 0 => {
                // SAFETY: signalling our own child: it finishes within shutdown-timeout.
                unsafe { libc::kill(proc_.pid, libc::SIGTERM) };
            }
            _ => {}
        }
    });
}

unsafe extern "C" fn stop_generation(data: *mut c_void) -> sys::apr_status_t {
    super::trampoline::guard("daemon cleanup", (), || {
        // SAFETY: data is the Generation put in pconf by start; this cleanup runs once.
        let generation = unsafe { &mut *data.cast::<Generation>() };
        let hard = HARD_STOP.load(Ordering::Relaxed) || mpm_stopping();
        // SAFETY: the bell lives in pconf beside the generation.
        let bell = unsafe { &mut *generation.bell };
        if bell.proc_.pid > 0 {
            // SAFETY: stopping and reaping our own child, which holds no state.
            unsafe {
                libc::kill(bell.proc_.pid, libc::SIGKILL);
                libc::waitpid(bell.proc_.pid, std::ptr::null_mut(), 0);
            }
            bell.proc_.pid = 0;
        }
        let mut pids = Vec::new();
        let mut limit = Duration::from_secs(1);
        // A graceful restart leaves the processes serving; the next generation's
        // processes retire them once ready (serving ones first, those being replaced and
        // those still handing over from an earlier generation last).
        let mut handover: Vec<HandedOver> = Vec::new();
        for &slot in &generation.slots {
            // SAFETY: slots live in pconf, which is being cleared after this cleanup.
            let slot = unsafe { &mut *slot };
            let name = &slot.group.spec.name;
            let older = slot.handover.take().filter(|&pid| is_live_child(pid));
            let pid = std::mem::take(&mut slot.proc_.pid);
            // Processes that serve are taken over first, one per new process; the rest
            // (a successor still loading or waiting to retry a failed start, one that
            // stopped taking requests) last, and those beyond the new count drain at once.
            let serving = |pid: i32| slot.group.health.is_serving(slot.index, pid as u32);
            let older = older.unwrap_or(0);
            let listed = [(!serving(pid), pid), (!serving(older), older)];
            for (last, pid) in listed.into_iter().filter(|&(_, pid)| pid > 0) {
                if hard {
                    // SAFETY: signalling our own child: SIGTERM stops it, finishing
                    // requests for at most shutdown-timeout.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    pids.push(pid);
                    limit = limit.max(slot.group.spec.shutdown_timeout + Duration::from_secs(1));
                } else {
                    handover.push(HandedOver {
                        group: name.clone(),
                        pid,
                        last,
                    });
                }
            }
        }
        let handover = supervisor::handover_order(handover);
        update_record(generation.process_pool, |record| record.handover = handover);
        if hard {
            daemon::reap(&pids, limit);
            generation.groups.iter().for_each(|g| g.remove_sockets());
            remember_sockets(generation.process_pool, &[]);
        }
        // The flags' only readers in the parent are the slots' and the bell's other-child
        // callbacks, whose registrations were made after this cleanup and so were removed
        // before it ran. Daemons (and a killed bell) keep their own inherited mapping.
        // The same holds for the health words: in the parent only start and the
        // other-child callbacks touch them.
        for shared in &mut generation.controls {
            if let Some(words) = shared.words.take() {
                words.unmap();
            }
        }
    });
    sys::APR_SUCCESS as sys::apr_status_t
}

/// Binds every group's socket and forks its processes (second post_config pass).
///
/// # Safety
/// `pconf` and `s` must be the live configuration pool and main server of this pass.
pub unsafe fn start(pconf: *mut sys::apr_pool_t, s: *mut sys::server_rec) -> Result<(), String> {
    let scopes = servers(s);
    let configs: Vec<&ServerConfig> = scopes.iter().map(|scope| scope.config).collect();
    let Some(main) = configs.first().copied() else {
        return Ok(());
    };
    // SAFETY: the process record outlives every generation.
    let process_pool = unsafe { (*(*s).process).pool };
    let mut previous = previous_sockets(process_pool);
    let handover = take_handover(process_pool);
    for &pid in handover.values().flatten() {
        watch_previous_generation(pconf, pid);
    }
    let prefix = socket_prefix(pconf, main);
    let definitions: Vec<(&DaemonDefinition, &Option<String>)> = scopes
        .iter()
        .flat_map(|scope| {
            scope
                .config
                .daemons
                .iter()
                .map(|d| (d, &scope.virtual_host))
        })
        .collect();
    let mut groups = Vec::new();
    let mut controls = Vec::new();
    for (d, _) in &definitions {
        for warning in setup::definition_warnings(d, identity::locale_exists) {
            tracing::warn!("{warning}");
        }
    }
    let parent = parent_facts(s);
    for (d, virtual_host) in definitions {
        // Each group's recycling flags and health words get a mapping of their own: its
        // daemons may write only there (the others' are made read-only in them).
        let pairs = d.spec.processes as usize;
        let control = SharedFlags::new(pairs + GroupHealth::words_for(2 * pairs))?;
        let words = control.flags;
        controls.push(control);
        let (recycle_flags, health) = words.split_at(pairs);
        groups.push(Arc::new(setup::build_group(
            d,
            setup::GroupPlace {
                virtual_host: virtual_host.clone(),
                health: GroupHealth::new(health),
                recycle_flags,
                control: words,
            },
            main,
            &configs,
            &prefix,
            &parent,
            &mut previous,
        )?));
    }
    setup::close_previous(previous);
    // Daemons of groups that are gone, or beyond the new process count, drain now.
    setup::surplus_handover(&handover, &groups)
        .into_iter()
        .for_each(daemon::drain);
    let handover_for = |name: &str, index: usize| -> Option<i32> {
        handover.get(name).and_then(|pids| pids.get(index).copied())
    };
    for g in &groups {
        crate::shared::metrics::register_group(&g.spec.name);
    }
    remember_sockets(process_pool, &groups);
    daemon::set_groups(groups.clone());
    HARD_STOP.store(false, Ordering::Relaxed);
    SETUP_SERVER.store(s, Ordering::Release);
    let mut slots = Vec::new();
    let mut first_slots = Vec::new();
    for g in &groups {
        for index in 0..g.spec.processes as usize {
            let flag = &g.recycle_flags[index];
            let new_slot = |handover, which: usize| Slot {
                // SAFETY: apr_proc_t is a plain C struct; zero is its unset state.
                proc_: unsafe { std::mem::zeroed() },
                group: g.clone(),
                started: Instant::now(),
                crashes: 0,
                pconf,
                partner: std::ptr::null_mut(),
                flag,
                retiring: false,
                handover,
                lane: index,
                index: 2 * index + which,
            };
            if let Some(pid) = handover_for(&g.spec.name, index) {
                g.health.mark_handed_over(2 * index, pid as u32);
            }
            // SAFETY: pconf is live; the slots are dropped when pconf is cleared, after
            // the APR other-child cleanups registered later have run.
            let (a, b) = unsafe {
                (
                    super::pool::into_pool(pconf, new_slot(handover_for(&g.spec.name, index), 0)),
                    super::pool::into_pool(pconf, new_slot(None, 1)),
                )
            };
            // SAFETY: both were just stored in pconf and are only used by this thread.
            unsafe {
                (*a).partner = b;
                (*b).partner = a;
            }
            slots.extend([a, b]);
            first_slots.push(a);
        }
    }
    // SAFETY: apr_proc_t is a plain C struct; zero is its unset state.
    let unset: sys::apr_proc_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let bell = unsafe {
        super::pool::into_pool(
            pconf,
            Bell {
                proc_: unset,
                flags: groups.iter().flat_map(|g| g.recycle_flags).collect(),
                pconf,
            },
        )
    };
    // SAFETY: as above; registered after the slots so it runs before they are freed.
    let generation = unsafe {
        super::pool::into_pool(
            pconf,
            Generation {
                slots,
                bell,
                groups,
                process_pool,
                controls,
            },
        )
    };
    // SAFETY: pconf is live; the cleanup's data is the Generation just stored in it.
    unsafe {
        sys::apr_pool_cleanup_register(
            pconf,
            generation.cast(),
            Some(stop_generation),
            Some(sys::apr_pool_cleanup_null),
        );
    }
    for slot in first_slots {
        // SAFETY: the slot was just stored in pconf.
        let predecessor = unsafe { (*slot).handover };
        spawn_slot(slot, Duration::ZERO, predecessor);
    }
    start_bell(bell);
    Ok(())
}

/// In an Apache child: the daemons' listening sockets are not its business.
/// (script, application group) pairs Apache's children load at start (embedded mode).
pub fn preloads_for_embedded(s: *mut sys::server_rec) -> Vec<(String, String)> {
    let scopes = servers(s);
    let configs: Vec<&ServerConfig> = scopes.iter().map(|scope| scope.config).collect();
    mod_wsgi_config::preloads_for(&configs, "")
}

pub fn close_inherited_listeners() {
    daemon::close_group_listeners(None);
}
