//! HTTP rules that do not depend on Apache or Python: what a WSGI application may pass to
//! start_response, and how trusted proxy headers rewrite the CGI environment.
#![forbid(unsafe_code)]

mod headers;
mod proxy;

pub use headers::{
    HeaderError, ResponseHead, is_hop_by_hop, latin1_bytes, validate_header, validate_status,
};
pub use proxy::apply_trusted_proxy_headers;
