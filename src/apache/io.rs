//! The WSGI transport traits over an Apache request: the body comes from
//! `ap_get_client_block`, the response goes through `r->headers_out` and the output
//! filter chain (file buckets for `wsgi.file_wrapper`).

use super::log::request_log;
use super::pool::copy_text;
use super::sys;
use crate::wsgi::{BodyReader, ResponseSink, SinkError};
use mod_wsgi_http::ResponseHead;
use std::ffi::c_void;
use std::os::fd::RawFd;

/// A request_rec the handler lends to the WSGI core for the duration of `wsgi::run`.
#[derive(Clone, Copy)]
pub struct LentRequest(*mut sys::request_rec);

// SAFETY: the request is only used from the handler's thread or, while that thread waits
// inside wsgi::run, from a Python thread the app started; wsgi::run detaches every reader
// and sink before returning, so no use outlives the handler call.
unsafe impl Send for LentRequest {}

impl LentRequest {
    /// # Safety
    /// `r` must stay live until every holder of this value is dropped.
    pub unsafe fn new(r: *mut sys::request_rec) -> Self {
        LentRequest(r)
    }
}

pub struct ApacheBody {
    r: LentRequest,
    started: bool,
    has_body: bool,
    /// For reads that do not wait (`read_append_now`); lives in the request pool.
    brigade: Option<Brigade>,
}

impl ApacheBody {
    pub fn new(r: LentRequest) -> Self {
        ApacheBody {
            r,
            started: false,
            has_body: false,
            brigade: None,
        }
    }
}

impl ApacheBody {
    /// Whether body bytes may still come (asks Apache once, on first use).
    fn more_to_read(&mut self) -> bool {
        if !self.started {
            self.started = true;
            // SAFETY: the request is live (LentRequest contract) and ap_setup_client_block
            // was called by the handler.
            self.has_body = unsafe { sys::ap_should_client_block(self.r.0) } != 0;
        }
        self.has_body
    }

    /// Reads up to `len` bytes to `dest`.
    ///
    /// # Safety
    /// `dest` must be valid for writes of `len` bytes.
    unsafe fn read_raw(&mut self, dest: *mut u8, len: usize) -> std::io::Result<usize> {
        if !self.more_to_read() || len == 0 {
            return Ok(0);
        }
        // SAFETY: live request; dest is writable for len bytes per the caller.
        let n = unsafe { sys::ap_get_client_block(self.r.0, dest.cast(), len) };
        if n < 0 {
            self.has_body = false;
            return Err(crate::wsgi::body_aborted());
        }
        Ok(n as usize)
    }

    /// Reads at most `max` bytes onto the end of `out`, into its spare capacity (waiting
    /// for the client only with `wait`; `Ok(None)`: nothing now).
    fn append(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        wait: bool,
    ) -> std::io::Result<Option<usize>> {
        if !self.more_to_read() {
            return Ok(Some(0));
        }
        out.reserve(max);
        let spare = out.spare_capacity_mut();
        let (dest, len) = (spare.as_mut_ptr().cast::<u8>(), spare.len().min(max));
        // SAFETY: the spare capacity is a writable region of at least `len` bytes owned
        // by `out`, which outlives the call.
        let n = unsafe {
            if wait {
                self.read_raw(dest, len).map(Some)
            } else {
                self.read_now(dest, len)
            }
        }?;
        if let Some(n) = n {
            // SAFETY: Apache initialised the first n bytes of the spare capacity.
            unsafe { out.set_len(out.len() + n) };
        }
        Ok(n)
    }

    /// Reads up to `len` bytes to `dest` without waiting for the client: `Ok(None)` when
    /// the input filters have nothing now.
    ///
    /// # Safety
    /// `dest` must be valid for writes of `len` bytes.
    unsafe fn read_now(&mut self, dest: *mut u8, len: usize) -> std::io::Result<Option<usize>> {
        if !self.more_to_read() || len == 0 {
            return Ok(Some(0));
        }
        let r = self.r.0;
        // SAFETY: live request (LentRequest contract); the brigade is created from its
        // pool and emptied before returning; dest is writable for len bytes per the
        // caller, and apr_brigade_flatten writes at most `n` (= len) bytes to it.
        let (got, n) = unsafe {
            let bb = match &self.brigade {
                Some(b) => b.0,
                None => {
                    let bb = sys::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
                    self.brigade = Some(Brigade(bb));
                    bb
                }
            };
            let readbytes = len.min(i64::MAX as usize) as sys::apr_off_t;
            let mut got = sys::ap_get_brigade(
                (*r).input_filters,
                bb,
                sys::AP_MODE_READBYTES,
                sys::APR_NONBLOCK_READ,
                readbytes,
            );
            let mut n = len as sys::apr_size_t;
            if got == sys::APR_SUCCESS as sys::apr_status_t {
                got = sys::apr_brigade_flatten(bb, dest.cast(), &mut n);
            }
            sys::apr_brigade_cleanup(bb.cast());
            (got, n as usize)
        };
        // On Unix APR passes the OS's EAGAIN through as APR_EAGAIN.
        if got == libc::EAGAIN as sys::apr_status_t {
            return Ok(None);
        }
        if got != sys::APR_SUCCESS as sys::apr_status_t {
            self.has_body = false;
            return Err(crate::wsgi::body_aborted());
        }
        if n == 0 {
            // The filters report "nothing yet" as EAGAIN, so this was the end-of-body
            // marker alone: a blocking read confirms it (returning at once) and leaves
            // the request in the state ap_get_client_block keeps.
            // SAFETY: as for this function.
            return unsafe { self.read_raw(dest, len) }.map(Some);
        }
        // SAFETY: live request (LentRequest contract).
        unsafe { (*r).read_length += n as sys::apr_off_t };
        Ok(Some(n))
    }
}

impl BodyReader for ApacheBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: buf is a valid writable region of buf.len() bytes.
        unsafe { self.read_raw(buf.as_mut_ptr(), buf.len()) }
    }

    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<usize> {
        // SAFETY: buf is a writable region of buf.len() bytes; Apache only writes to it.
        unsafe { self.read_raw(buf.as_mut_ptr().cast(), buf.len()) }
    }

    fn read_append(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        Ok(self.append(out, max, true)?.unwrap_or(0))
    }

    fn read_append_now(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<Option<usize>> {
        self.append(out, max, false)
    }

    fn readable_fd(&self) -> Option<(RawFd, std::time::Duration)> {
        let r = self.r.0;
        // SAFETY: live request (LentRequest contract); ap_get_conn_socket returns the
        // connection's socket or NULL, owned by the connection; apr_os_sock_get only
        // reads it.
        unsafe {
            // An HTTP/2 stream's body arrives through its main connection's thread, not
            // on a socket of its own: no descriptor tells when more is there.
            if !(*(*r).connection).master.is_null() {
                return None;
            }
            let socket = sys::ap_get_conn_socket((*r).connection);
            if socket.is_null() {
                return None;
            }
            let mut fd: sys::apr_os_sock_t = -1;
            if sys::apr_os_sock_get(&mut fd, socket) != sys::APR_SUCCESS as sys::apr_status_t
                || fd < 0
            {
                return None;
            }
            // The server's Timeout, which Apache's own blocking reads of the body apply.
            let timeout = (*(*r).server).timeout.max(0) as u64;
            Some((fd, std::time::Duration::from_micros(timeout)))
        }
    }
}

pub struct ApacheSink {
    r: LentRequest,
    sendfile: bool,
    /// Reused for every write of the response; lives in the request pool.
    brigade: Option<Brigade>,
    /// response-socket-timeout: the client socket's timeout from the response head on.
    write_timeout: Option<std::time::Duration>,
    /// The client socket and the timeout it had before, put back when the sink goes.
    restore_timeout: Option<(ClientSocket, sys::apr_interval_time_t)>,
    /// Body passed down the filter chain by `write_unflushed` since the last flush.
    unflushed: bool,
}

struct ClientSocket(*mut sys::apr_socket_t);

// SAFETY: the connection's socket, used only under the LentRequest contract (one thread
// at a time, never after the handler returns).
unsafe impl Send for ClientSocket {}

struct Brigade(*mut sys::apr_bucket_brigade);

// SAFETY: allocated from the lent request's pool and used only under the LentRequest
// contract (one thread at a time, never after the handler returns).
unsafe impl Send for Brigade {}

/// What `pass_through` needs: the filter to pass to, whether to flush, and whether it
/// ran.
struct PassTarget {
    filter: *mut sys::ap_filter_t,
    flush: bool,
    passed: bool,
}

/// apr_brigade_write's flush callback: passes the brigade, which then holds the caller's
/// data as a transient bucket, not a copy. With a flush bucket the core output filter
/// writes it out at once instead of setting a copy aside; without, a filter copies only
/// what it keeps.
unsafe extern "C" fn pass_through(
    bb: *mut sys::apr_bucket_brigade,
    ctx: *mut c_void,
) -> sys::apr_status_t {
    // SAFETY: ctx is the PassTarget on the stack of ApacheSink::pass, which outlives the
    // apr_brigade_write call that invokes this.
    let target = unsafe { &mut *ctx.cast::<PassTarget>() };
    target.passed = true;
    // SAFETY: the filter and brigade belong to the live request being written.
    unsafe {
        if target.flush {
            sys::ap_fflush(target.filter, bb)
        } else {
            sys::ap_pass_brigade(target.filter, bb)
        }
    }
}

impl ApacheSink {
    pub fn new(r: LentRequest, sendfile: bool) -> Self {
        ApacheSink {
            r,
            sendfile,
            brigade: None,
            write_timeout: None,
            restore_timeout: None,
            unflushed: false,
        }
    }

    /// Writes to the client time out after `timeout` once the response has started
    /// (response-socket-timeout), instead of after Apache's Timeout.
    pub fn with_write_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    fn apply_write_timeout(&mut self) {
        let Some(timeout) = self.write_timeout.take() else {
            return;
        };
        let r = self.req();
        // SAFETY: live request; the socket belongs to the connection, which outlives the
        // request; an HTTP/2 stream has none of its own (its writes go through the main
        // connection), so it keeps Apache's timeout.
        unsafe {
            if !(*r.connection).master.is_null() {
                return;
            }
            let socket = sys::ap_get_conn_socket(r.connection);
            if socket.is_null() {
                return;
            }
            let mut before: sys::apr_interval_time_t = 0;
            sys::apr_socket_timeout_get(socket, &mut before);
            let micros =
                sys::apr_interval_time_t::try_from(timeout.as_micros()).unwrap_or(i64::MAX);
            sys::apr_socket_timeout_set(socket, micros);
            self.restore_timeout = Some((ClientSocket(socket), before));
        }
    }

    fn brigade(&mut self) -> *mut sys::apr_bucket_brigade {
        if let Some(b) = &self.brigade {
            return b.0;
        }
        let r = self.req();
        // SAFETY: live request; the brigade is allocated from (and dies with) its pool.
        let bb = unsafe { sys::apr_brigade_create(r.pool, (*r.connection).bucket_alloc) };
        self.brigade = Some(Brigade(bb));
        bb
    }

    fn req(&mut self) -> &mut sys::request_rec {
        // SAFETY: live and used by one thread at a time (LentRequest contract; the WSGI
        // core serialises sink calls behind a mutex), and borrowed through &mut self.
        unsafe { &mut *self.r.0 }
    }

    /// A PEP 3333 native string copied into the request pool as the ISO-8859-1 bytes
    /// it stands for (validation refused anything above U+00FF).
    fn pstrdup(&mut self, s: &str) -> *mut std::os::raw::c_char {
        let bytes = mod_wsgi_http::latin1_bytes(s).unwrap_or_else(|| s.as_bytes().to_vec());
        // SAFETY: the request pool is live while the request is lent.
        unsafe { copy_text(self.req().pool, &bytes) }
    }

    /// Passes `data` down the filter chain, with a flush bucket after it if `flush` (an
    /// empty `data` with `flush` only flushes).
    fn pass(&mut self, data: &[u8], flush: bool) -> Result<(), SinkError> {
        if data.is_empty() && !flush {
            return Ok(());
        }
        let bb = self.brigade();
        let mut target = PassTarget {
            filter: self.req().output_filters,
            flush,
            passed: data.is_empty(),
        };
        // SAFETY: live request and brigade; `data` outlives the call, and a filter that
        // keeps a transient bucket past its return sets it aside (copies it) first.
        let rv = unsafe {
            let mut rv = if data.is_empty() {
                sys::ap_fflush(target.filter, bb)
            } else {
                sys::apr_brigade_write(
                    bb,
                    Some(pass_through),
                    (&raw mut target).cast(),
                    data.as_ptr().cast(),
                    data.len(),
                )
            };
            if rv == sys::APR_SUCCESS as sys::apr_status_t && !target.passed {
                rv = if flush {
                    sys::ap_fflush(target.filter, bb)
                } else {
                    sys::ap_pass_brigade(target.filter, bb)
                };
            }
            sys::apr_brigade_cleanup(bb.cast());
            rv
        };
        self.unflushed = !flush;
        if rv != sys::APR_SUCCESS as sys::apr_status_t || self.client_gone() {
            return Err(SinkError::ClientGone);
        }
        Ok(())
    }

    fn client_gone(&mut self) -> bool {
        // SAFETY: the connection outlives the request.
        unsafe { (*self.req().connection).aborted != 0 }
    }
}

impl Drop for ApacheSink {
    fn drop(&mut self) {
        if let Some((socket, before)) = self.restore_timeout.take() {
            // SAFETY: the sink is dropped before the handler returns (LentRequest
            // contract), while the connection and its socket are live.
            unsafe { sys::apr_socket_timeout_set(socket.0, before) };
        }
    }
}

unsafe extern "C" fn close_fd(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: data carries the fd dup'ed in send_file, owned by this cleanup alone.
    unsafe { libc::close(data as usize as RawFd) };
    sys::APR_SUCCESS as sys::apr_status_t
}

impl ResponseSink for ApacheSink {
    fn send_head(
        &mut self,
        head: &ResponseHead,
        headers: &[(String, String)],
    ) -> Result<(), SinkError> {
        self.apply_write_timeout();
        let status_line = self.pstrdup(&head.status_line);
        self.req().status = i32::from(head.code);
        self.req().status_line = status_line;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("content-type") {
                let v = self.pstrdup(value);
                // SAFETY: live request; the value is pool memory, as Apache keeps it.
                unsafe { sys::ap_set_content_type(self.req(), v) };
            } else if name.eq_ignore_ascii_case("content-length") {
                if let Ok(n) = value.trim().parse::<i64>() {
                    // SAFETY: live request.
                    unsafe { sys::ap_set_content_length(self.req(), n) };
                }
            } else {
                let (n, v) = (self.pstrdup(name), self.pstrdup(value));
                // SAFETY: live request; key and value are NUL-terminated pool strings.
                unsafe { sys::apr_table_add(self.req().headers_out, n, v) };
            }
        }
        Ok(())
    }

    /// Large blocks go down the filter chain as a transient bucket followed by a flush
    /// (no copy: ap_rwrite's path made the core output filter set aside a heap copy of
    /// every large block, which the thread's allocator then kept); small blocks are
    /// copied into one heap bucket and flushed.
    fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.pass(data, true)
    }

    /// As `write`, without the flush bucket (daemon mode's response-flush-delay): the
    /// filters may hold the block until `flush`, copying what they keep (the core output
    /// filter writes what the socket takes and, past 64 KiB held, waits to write more).
    fn write_unflushed(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.pass(data, false)
    }

    fn needs_flush(&self) -> bool {
        self.unflushed
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if !self.unflushed {
            return Ok(());
        }
        self.pass(&[], true)
    }

    fn send_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), SinkError> {
        let sendfile = self.sendfile;
        let r: *mut sys::request_rec = self.req();
        // SAFETY: fd is an open descriptor borrowed for this call; the duplicate is owned
        // by a cleanup of the request pool, which Apache destroys only after every bucket
        // of this request has been written.
        unsafe {
            let dup = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0);
            if dup < 0 {
                return Err(SinkError::Failed(format!(
                    "cannot duplicate file descriptor {fd}: {}",
                    std::io::Error::last_os_error()
                )));
            }
            let pool = (*r).pool;
            sys::apr_pool_cleanup_register(
                pool,
                dup as usize as *mut c_void,
                Some(close_fd),
                Some(sys::apr_pool_cleanup_null),
            );
            let mut file: *mut sys::apr_file_t = std::ptr::null_mut();
            let mut os_fd: sys::apr_os_file_t = dup;
            let flags = sys::APR_FOPEN_READ
                | if sendfile {
                    sys::APR_FOPEN_SENDFILE_ENABLED
                } else {
                    0
                };
            if sys::apr_os_file_put(&mut file, &mut os_fd, flags, pool) != 0 {
                return Err(SinkError::Failed("apr_os_file_put failed".to_owned()));
            }
            let bb = sys::apr_brigade_create(pool, (*(*r).connection).bucket_alloc);
            sys::apr_brigade_insert_file(bb, file, offset as i64, len as i64, pool);
            let rv = sys::ap_pass_brigade((*r).output_filters, bb);
            sys::apr_brigade_cleanup(bb.cast());
            if rv != 0 || self.client_gone() {
                return Err(SinkError::ClientGone);
            }
        }
        Ok(())
    }

    fn log(&self, level: tracing::Level, message: &str) {
        // SAFETY: live request (LentRequest contract).
        unsafe { request_log(self.r.0, level, message) };
    }

    fn log_critical(&self, message: &str) {
        // SAFETY: live request (LentRequest contract).
        unsafe { super::log::request_log_at(self.r.0, sys::APLOG_CRIT, message) };
    }
}
