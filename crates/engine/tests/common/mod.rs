//! What the engine's in-process tests share: CPython started once per test binary, WSGI
//! scripts written to a scratch directory, an in-memory request body and a response sink
//! that records what the engine sends, standing in for Apache's request or a daemon's
//! socket.
#![allow(dead_code)]

use mod_wsgi_engine::python::{self, PythonSettings};
use mod_wsgi_engine::wsgi::{self, BodyReader, OnScriptChange, Outcome, ResponseSink, SinkError};
use mod_wsgi_http::ResponseHead;
use mod_wsgi_wire::Environ;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use tracing::Level;

/// The settings the tests start CPython with.
pub fn settings() -> PythonSettings {
    PythonSettings {
        dont_write_bytecode: true,
        multithread: true,
        threads_per_process: 4,
        maximum_processes: 1,
        ..PythonSettings::default()
    }
}

/// Starts CPython in this test binary with `settings` (the first call does; CPython
/// starts only once in a process).
pub fn start_python(settings: PythonSettings) {
    static START: Once = Once::new();
    START.call_once(|| {
        python::initialize(settings).expect("CPython starts in the test process");
    });
}

/// Starts CPython in this test binary (once; every test calls it first).
pub fn python() {
    start_python(settings());
}

/// Runs `code` in a fresh namespace of the interpreter `py` stands for and returns the
/// namespace.
pub fn exec<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyDict> {
    let globals = PyDict::new(py);
    let code = CString::new(code).expect("no NUL in test code");
    if let Err(e) = py.run(&code, Some(&globals), None) {
        panic!("{}", python::format_exception(py, &e));
    }
    globals
}

/// `exec`, then the value the code left in `result`, as a Rust value.
pub fn eval<'py, T: FromPyObjectOwned<'py>>(py: Python<'py>, code: &str) -> T {
    let globals = exec(py, code);
    let result = globals
        .get_item("result")
        .expect("dict lookup")
        .expect("the code sets `result`");
    match result.extract() {
        Ok(value) => value,
        Err(_) => panic!("`result` has an unexpected type: {result}"),
    }
}

/// Python code setting `result` to the id CPython gives the current interpreter.
pub const INTERPRETER_ID: &str = r#"
try:
    import _interpreters as _subinterpreters
except ImportError:
    import _xxsubinterpreters as _subinterpreters
_current = _subinterpreters.get_current()
result = int(_current[0] if isinstance(_current, tuple) else _current)
"#;

/// The id of the interpreter `py` stands for.
pub fn interpreter_id(py: Python<'_>) -> i64 {
    eval(py, INTERPRETER_ID)
}

/// This test binary's scratch directory.
pub fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Writes a WSGI script called `name` into the scratch directory. The file is replaced
/// whole (renamed into place), so a test reading it meanwhile never sees half of it.
pub fn script(name: &str, source: &str) -> PathBuf {
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let path = scratch().join(name);
    let partial = scratch().join(format!(
        ".{name}.{}",
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&partial, source).expect("script written");
    std::fs::rename(&partial, &path).expect("script renamed into place");
    path
}

/// A GET of `/` for the script at `path` in application group `group`.
pub fn request(path: &Path, group: &str) -> wsgi::WsgiRequest {
    let mut environ = Environ::new();
    for (key, value) in [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/"),
        ("QUERY_STRING", ""),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
    ] {
        environ.push(key, value);
    }
    wsgi::WsgiRequest {
        environ,
        application_group: group.to_owned(),
        script: path.to_owned(),
        script_mtime: mod_wsgi_engine::python::script_mtime(path),
        callable: "application".to_owned(),
        reload: false,
        header_only: false,
        multithread: true,
        multiprocess: false,
        run_once: false,
        on_script_change: OnScriptChange::Reload,
        on_script_loaded: None,
        apache_request: None,
    }
}

/// A request body held in memory, handed over at most `chunk` bytes per read (as a
/// socket hands over what has arrived).
pub struct MemoryBody {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl MemoryBody {
    pub fn new(data: &[u8], chunk: usize) -> MemoryBody {
        MemoryBody {
            data: data.to_vec(),
            pos: 0,
            chunk: chunk.max(1),
        }
    }

    fn next(&mut self, room: usize) -> &[u8] {
        let n = room.min(self.chunk).min(self.data.len() - self.pos);
        let start = self.pos;
        self.pos += n;
        &self.data[start..start + n]
    }
}

impl BodyReader for MemoryBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let piece = self.next(buf.len());
        let n = piece.len();
        buf[..n].copy_from_slice(piece);
        Ok(n)
    }

    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        let piece = self.next(buf.len());
        for (slot, byte) in buf.iter_mut().zip(piece) {
            slot.write(*byte);
        }
        Ok(piece.len())
    }
}

/// The status and headers a [`RecordingSink`] was handed.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub code: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
}

/// The application failed before any of its response was sent.
pub const FAILED_BEFORE_HEAD: Outcome = Outcome::Failed {
    headers_sent: false,
};

/// Everything a [`RecordingSink`] was handed.
#[derive(Debug, Default)]
pub struct Record {
    /// Status and headers, once sent.
    pub head: Option<Head>,
    pub heads_sent: usize,
    /// Body bytes, from `write` and `send_file` alike, in order.
    pub body: Vec<u8>,
    pub writes: usize,
    /// (offset, length) of each `send_file`.
    pub files: Vec<(u64, u64)>,
    pub log: Vec<(Level, String)>,
}

impl Record {
    pub fn status(&self) -> Option<u16> {
        self.head.as_ref().map(|head| head.code)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .as_ref()?
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts that a logged line contains `needle`.
    #[track_caller]
    pub fn assert_logged(&self, needle: &str) {
        let log = self.log_text();
        assert!(log.contains(needle), "{log}");
    }

    /// Every logged line, joined (for `contains` checks).
    pub fn log_text(&self) -> String {
        self.log
            .iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A response sink that records what it is handed; with `client_gone_after` (or
/// `failing_after`), writes beyond that many fail as when the client closed the
/// connection (or the transport broke).
pub struct RecordingSink {
    record: Arc<Mutex<Record>>,
    client_gone_after: Option<usize>,
    failing_after: Option<usize>,
}

impl RecordingSink {
    pub fn new() -> (RecordingSink, Arc<Mutex<Record>>) {
        let record = Arc::new(Mutex::new(Record::default()));
        let sink = RecordingSink {
            record: record.clone(),
            client_gone_after: None,
            failing_after: None,
        };
        (sink, record)
    }

    pub fn client_gone_after(mut self, writes: usize) -> RecordingSink {
        self.client_gone_after = Some(writes);
        self
    }

    pub fn failing_after(mut self, writes: usize) -> RecordingSink {
        self.failing_after = Some(writes);
        self
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ResponseSink for RecordingSink {
    fn send_head(
        &mut self,
        head: &ResponseHead,
        headers: &[(String, String)],
    ) -> Result<(), SinkError> {
        let mut record = self.record();
        record.heads_sent += 1;
        record.head = Some(Head {
            code: head.code,
            status_line: head.status_line.clone(),
            headers: headers.to_vec(),
        });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        let (gone, failing) = (self.client_gone_after, self.failing_after);
        let mut record = self.record();
        if gone.is_some_and(|n| record.writes >= n) {
            return Err(SinkError::ClientGone);
        }
        if failing.is_some_and(|n| record.writes >= n) {
            return Err(SinkError::Failed("the transport broke".to_owned()));
        }
        record.writes += 1;
        record.body.extend_from_slice(data);
        Ok(())
    }

    fn send_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), SinkError> {
        // The descriptor is only borrowed: read the file through its /proc name.
        let whole = std::fs::read(format!("/proc/self/fd/{fd}"))
            .map_err(|e| SinkError::Failed(e.to_string()))?;
        let start = (offset as usize).min(whole.len());
        let end = (start + len as usize).min(whole.len());
        let mut record = self.record();
        record.files.push((offset, len));
        record.body.extend_from_slice(&whole[start..end]);
        Ok(())
    }

    fn log(&self, level: Level, message: &str) {
        self.record().log.push((level, message.to_owned()));
    }
}

/// Runs `req` with `body` handed over in pieces of `chunk` bytes; returns how it ended
/// and what the sink recorded.
pub fn serve_with(
    req: wsgi::WsgiRequest,
    body: &[u8],
    chunk: usize,
    sink: RecordingSink,
    record: Arc<Mutex<Record>>,
) -> (Outcome, Record) {
    let outcome = wsgi::run(req, Box::new(MemoryBody::new(body, chunk)), Box::new(sink));
    let recorded = std::mem::take(&mut *record.lock().unwrap_or_else(|p| p.into_inner()));
    (outcome, recorded)
}

/// Runs `req` with `body` (in pieces of 1000 bytes) and a fresh recording sink.
pub fn serve(req: wsgi::WsgiRequest, body: &[u8]) -> (Outcome, Record) {
    python();
    let (sink, record) = RecordingSink::new();
    serve_with(req, body, 1000, sink, record)
}

/// Writes the script `name` and runs a GET of it in the main interpreter.
pub fn get(name: &str, source: &str) -> (Outcome, Record) {
    let path = script(name, source);
    serve(request(&path, ""), b"")
}
