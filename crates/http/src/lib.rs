//! HTTP rules that do not depend on Apache or Python: what a WSGI application may pass to
//! start_response, how trusted proxy headers rewrite the CGI environment, and SCRIPT_NAME.
#![forbid(unsafe_code)]

mod cgi;
mod headers;
mod proxy;
mod request_body;
mod script_name;
mod variables;

pub use cgi::{RequestLine, as_ascii, latin1, push_latin1, to_latin1};
pub use headers::{
    HeaderError, ResponseHead, is_hop_by_hop, latin1_bytes, validate_header, validate_status,
};
pub use proxy::apply_trusted_proxy_headers;
pub use request_body::{Refusal, ScriptFile, refuse_body, refuse_script};
pub use script_name::script_name;
pub use variables::RequestVariables;
