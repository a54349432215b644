//! `Request`: a borrowed request_rec with safe accessors. Strings read from Apache are
//! copied out; strings handed to Apache are copied into the request pool.

use super::pool::copy_text;
use super::sys;
use mod_wsgi_config::RequestPorts;
use mod_wsgi_wire::Environ;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;

/// A request_rec that stays alive (and is only used by this thread) for `'r`.
pub struct Request<'r> {
    raw: *mut sys::request_rec,
    _life: PhantomData<&'r mut sys::request_rec>,
}

pub use mod_wsgi_http::latin1;
use mod_wsgi_http::{as_ascii, push_latin1};

/// # Safety
/// `ptr` must be null or a NUL-terminated string that outlives `'a`.
unsafe fn opt_cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    // SAFETY: per the caller.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) })
}

/// Iterates an APR table as (key, value) byte strings.
///
/// # Safety
/// `table` must be a live apr_table_t not modified during the call.
pub unsafe fn table_entries<'t>(table: *const sys::apr_table_t) -> Vec<(&'t [u8], &'t [u8])> {
    // SAFETY: an apr_table_t begins with its apr_array_header_t of apr_table_entry_t (the
    // documented apr_table_elts layout); entries with a null key are deleted slots. Keys
    // and values live in the table's pool, which outlives 't per the caller.
    unsafe {
        let array = &*table.cast::<sys::apr_array_header_t>();
        let entries = array.elts.cast::<sys::apr_table_entry_t>();
        let mut out = Vec::with_capacity(array.nelts as usize);
        for i in 0..array.nelts as usize {
            let e = &*entries.add(i);
            if e.key.is_null() {
                continue;
            }
            let val = opt_cstr(e.val).map_or(&[][..], CStr::to_bytes);
            out.push((CStr::from_ptr(e.key).to_bytes(), val));
        }
        out
    }
}

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` must be a live request_rec, used only by this thread for `'r`.
    pub unsafe fn from_raw(raw: *mut sys::request_rec) -> Self {
        Request {
            raw,
            _life: PhantomData,
        }
    }

    pub fn raw(&self) -> *mut sys::request_rec {
        self.raw
    }

    fn r(&self) -> &sys::request_rec {
        // SAFETY: live for 'r (constructor contract).
        unsafe { &*self.raw }
    }

    pub fn pool(&self) -> *mut sys::apr_pool_t {
        self.r().pool
    }

    pub fn server(&self) -> *mut sys::server_rec {
        self.r().server
    }

    pub fn connection(&self) -> *mut sys::conn_rec {
        self.r().connection
    }

    /// Copies `s` into the request pool.
    pub fn pstrdup(&self, s: &[u8]) -> *mut c_char {
        // SAFETY: the request pool is live for 'r.
        unsafe { copy_text(self.pool(), s) }
    }

    fn field(&self, ptr: *const c_char) -> Option<&'r CStr> {
        // SAFETY: request_rec string fields live in the request pool for 'r.
        unsafe { opt_cstr(ptr) }
    }

    pub fn uri(&self) -> &'r [u8] {
        self.field(self.r().uri)
            .map(CStr::to_bytes)
            .unwrap_or_default()
    }

    pub fn handler(&self) -> Option<&'r CStr> {
        self.field(self.r().handler)
    }

    pub fn hostname(&self) -> Option<String> {
        self.field(self.r().hostname).map(|h| latin1(h.to_bytes()))
    }

    /// Owner (uid, gid) of `r->filename`, from Apache's own stat of it.
    pub fn file_owner(&self) -> (u32, u32) {
        (self.r().finfo.user, self.r().finfo.group)
    }

    pub fn header_only(&self) -> bool {
        self.r().header_only != 0
    }

    pub fn filetype(&self) -> u32 {
        self.r().finfo.filetype
    }

    /// Modification time of `r->filename` in seconds, from Apache's own stat of it.
    pub fn file_mtime(&self) -> f64 {
        self.r().finfo.mtime as f64 / 1_000_000.0
    }

    pub fn filename(&self) -> Option<std::path::PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        self.field(self.r().filename)
            .map(|f| std::ffi::OsStr::from_bytes(f.to_bytes()).into())
    }

    pub fn set_filename(&mut self, filename: &[u8]) {
        let value = self.pstrdup(filename);
        // SAFETY: live for 'r; the new value lives in the request pool.
        unsafe { (*self.raw).filename = value };
    }

    /// The authenticated user (`r->user`), decoded as latin-1.
    pub fn user(&self) -> Option<String> {
        self.field(self.r().user).map(|u| latin1(u.to_bytes()))
    }

    pub fn set_user(&mut self, user: &[u8]) {
        let value = self.pstrdup(user);
        // SAFETY: live for 'r; the new value lives in the request pool.
        unsafe { (*self.raw).user = value };
    }

    /// The client's host name when Apache looked it up (HostnameLookups), else its
    /// address.
    pub fn remote_host(&self) -> Option<String> {
        // SAFETY: live for 'r: the connection, its per-directory config vector and the
        // returned string (connection pool) outlive this call.
        let host = unsafe {
            sys::ap_get_remote_host(
                self.connection(),
                self.r().per_dir_config.cast(),
                sys::REMOTE_HOST,
                std::ptr::null_mut(),
            )
        };
        self.field(host)
            .or_else(|| self.field(self.r().useragent_ip))
            .map(|h| latin1(h.to_bytes()))
    }

    pub fn set_handler(&mut self, handler: &'static CStr) {
        // SAFETY: live for 'r; the handler name is a 'static string.
        unsafe { (*self.raw).handler = handler.as_ptr() };
    }

    fn table_get(&self, table: *mut sys::apr_table_t, key: &CStr) -> Option<String> {
        // SAFETY: request tables are live for 'r; the result lives in the table.
        self.field(unsafe { sys::apr_table_get(table, key.as_ptr()) })
            .map(|v| latin1(v.to_bytes()))
    }

    pub fn header_in(&self, key: &CStr) -> Option<String> {
        self.table_get(self.r().headers_in, key)
    }

    pub fn note(&self, key: &CStr) -> Option<String> {
        self.table_get(self.r().notes, key)
    }

    pub fn set_note(&mut self, key: &'static CStr, value: &str) {
        let value = self.pstrdup(value.as_bytes());
        // SAFETY: notes is live for 'r; setn keeps the pointers, which are 'static/pool.
        unsafe { sys::apr_table_setn(self.r().notes, key.as_ptr(), value) };
    }

    /// Adds a header to the response, error responses included (`err_headers_out`).
    pub fn set_error_header(&mut self, key: &'static CStr, value: &'static CStr) {
        // SAFETY: err_headers_out is live for 'r; setn keeps the 'static pointers.
        unsafe { sys::apr_table_setn(self.r().err_headers_out, key.as_ptr(), value.as_ptr()) };
    }

    /// Adds a header line with a computed value to every response of this request
    /// (`err_headers_out`), beside any the application sets under the same name.
    pub fn add_error_header(&mut self, key: &'static CStr, value: &str) {
        let Ok(value) = CString::new(value) else {
            return;
        };
        // SAFETY: err_headers_out is live for 'r; apr_table_add copies key and value
        // into the table's pool.
        unsafe { sys::apr_table_add(self.r().err_headers_out, key.as_ptr(), value.as_ptr()) };
    }

    pub fn env_var(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        self.table_get(self.r().subprocess_env, &key)
    }

    /// The CGI environment, decoded as latin-1: ap_add_common_vars (headers, server and
    /// client facts, SetEnv values) plus the request-line variables. Those are computed
    /// here rather than by ap_add_cgi_vars, which runs a sub-request per request only to
    /// fill PATH_TRANSLATED.
    pub fn cgi_environment(&mut self) -> Environ {
        // SAFETY: live for 'r; ap_add_common_vars fills r->subprocess_env.
        let entries = unsafe {
            sys::ap_add_common_vars(self.raw);
            table_entries(self.r().subprocess_env)
        };
        let text_len: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        // Room for the variables set below and the handler's own (about 20).
        let mut env = Environ::with_capacity(entries.len() + 24, text_len + 1024);
        for (key, value) in entries {
            let key = match as_ascii(key) {
                Some(ascii) => std::borrow::Cow::Borrowed(ascii),
                None => std::borrow::Cow::Owned(latin1(key)),
            };
            env.push_with(&key, |text| push_latin1(text, value));
        }
        let r = self.r();
        let text = |p: *const c_char| {
            self.field(p)
                .map(|v| latin1(v.to_bytes()))
                .unwrap_or_default()
        };
        mod_wsgi_http::RequestLine {
            protocol: text(r.protocol),
            method: text(r.method),
            args: text(r.args),
            unparsed_uri: text(r.unparsed_uri),
            uri: text(r.uri),
            path_info: text(r.path_info),
        }
        .apply(&mut env);
        env
    }

    /// The ServerName of the virtual host that took the request (`r->server->
    /// server_hostname`), as configured: unlike `ap_get_server_name`, never the client's
    /// Host header.
    pub fn server_hostname(&self) -> String {
        // SAFETY: the server record and its strings live for the configuration generation.
        let name = unsafe { opt_cstr((*self.server()).server_hostname) };
        name.map(|n| latin1(n.to_bytes())).unwrap_or_default()
    }

    /// The ports group names may take their port from (see `RequestPorts::group_port`).
    pub fn ports(&self) -> RequestPorts {
        let r = self.r();
        // SAFETY: live for 'r; the server record lives for the configuration generation.
        let (reported, configured, default) = unsafe {
            (
                sys::ap_get_server_port(self.raw),
                (*r.server).port,
                sys::ap_run_default_port(self.raw),
            )
        };
        // Apache stores the Host header's port here (and an absolute URI's).
        let from_client = (!r.parsed_uri.port_str.is_null()).then_some(r.parsed_uri.port);
        RequestPorts {
            reported,
            from_client,
            local: self.listener().1,
            configured,
            default,
        }
    }

    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: live for 'r.
        unsafe { sys::ap_allow_options(self.raw) & sys::OPT_EXECCGI != 0 }
    }

    /// Whether an output filter that may rewrite content sits before the protocol filters.
    pub fn has_content_filters(&self) -> bool {
        let f = self.r().output_filters;
        // SAFETY: the filter chain and its records live for 'r.
        !f.is_null()
            && unsafe { !(*f).frec.is_null() && (*(*f).frec).ftype < sys::AP_FTYPE_PROTOCOL }
    }

    /// True for GET (and HEAD, which Apache gives the GET method number).
    pub fn is_get(&self) -> bool {
        self.r().method_number == sys::M_GET
    }

    /// Sends a complete small response: content type, length and body.
    pub fn respond(&mut self, content_type: &'static CStr, body: &[u8]) {
        // SAFETY: the request is live for 'r; the content type is 'static; ap_rwrite
        // copies the body (its length fits an int: the callers' bodies are small).
        unsafe {
            sys::ap_set_content_type(self.raw, content_type.as_ptr());
            sys::ap_set_content_length(self.raw, body.len() as sys::apr_off_t);
            if !self.header_only() {
                sys::ap_rwrite(body.as_ptr().cast(), body.len() as i32, self.raw);
            }
        }
    }

    /// The final status and the metrics note of a request that ended: the note is looked
    /// up along the internal-redirect chain (`r->next`), the status is the last request's.
    pub fn outcome_for_metrics(&self, note: &CStr) -> (Option<String>, i32) {
        let mut found = self.note(note);
        let mut last = self.raw;
        // SAFETY: the redirect chain's requests live in the original request's pool, which
        // is live for 'r.
        unsafe {
            while !(*last).next.is_null() {
                last = (*last).next;
                if found.is_none() {
                    found = self.table_get((*last).notes, note);
                }
            }
            (found, (*last).status)
        }
    }

    pub fn request_time(&self) -> i64 {
        self.r().request_time
    }

    /// Apache's id of this request (as `%L` logs it), made now if nothing logged it yet,
    /// as mod_wsgi does for `mod_wsgi.request_id`.
    pub fn log_id(&self) -> Option<String> {
        if self.r().log_id.is_null() {
            // SAFETY: the request and its connection are live for 'r and used only by
            // this thread; the hook stores a pool string into the request's log_id field.
            unsafe {
                sys::ap_run_generate_log_id(
                    self.connection(),
                    self.raw,
                    &raw mut (*self.raw).log_id,
                )
            };
        }
        self.field(self.r().log_id).map(|v| latin1(v.to_bytes()))
    }

    /// Local address and port the request arrived on.
    pub fn listener(&self) -> (String, u16) {
        // SAFETY: the connection and its local address live at least as long as 'r.
        unsafe {
            let c = &*self.connection();
            let ip = opt_cstr(c.local_ip)
                .map(|v| latin1(v.to_bytes()))
                .unwrap_or_default();
            let port = if c.local_addr.is_null() {
                0
            } else {
                (*c.local_addr).port
            };
            (ip, port)
        }
    }

    pub fn connection_log_id(&self) -> Option<String> {
        // SAFETY: the connection lives at least as long as 'r.
        self.field(unsafe { (*self.connection()).log_id })
            .map(|v| latin1(v.to_bytes()))
    }

    pub fn limit_request_body(&self) -> u64 {
        // SAFETY: live for 'r.
        u64::try_from(unsafe { sys::ap_get_limit_req_body(self.raw) }).unwrap_or(0)
    }

    pub fn dir_config<T>(&self) -> Option<&'r T> {
        // SAFETY: per_dir_config is this generation's merged vector for the request.
        unsafe { super::config::lookup(self.r().per_dir_config) }
    }
}
