//! Options for what Apache serves beside the application: static files, error
//! documents, status pages, compression, proxies, access control scripts and telemetry,
//! with mod_wsgi-express's names and defaults.

use clap::{ArgAction, Args};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct SiteArgs {
    /// Application group (interpreter) the application runs in [default: %{GLOBAL},
    /// the main interpreter].
    #[arg(long, value_name = "NAME")]
    pub application_group: Option<String>,
    /// Name of the daemon process group [default: HOST:PORT].
    #[arg(long, value_name = "NAME")]
    pub process_group: Option<String>,
    /// Map HEAD requests to GET: Off, On or Auto (WSGIMapHEADToGET) [default: Auto].
    #[arg(long, value_name = "OFF|ON|AUTO")]
    pub map_head_to_get: Option<String>,
    /// Index file served for a directory of the document root (DirectoryIndex).
    #[arg(long, value_name = "FILE-NAME")]
    pub directory_index: Option<String>,
    /// List directories of the document root that have no index file.
    #[arg(long)]
    pub directory_listing: bool,
    /// Directive types .htaccess files in the document root may override [default:
    /// None] (repeatable).
    #[arg(long, value_name = "DIRECTIVE-TYPE", action = ArgAction::Append)]
    pub allow_override: Vec<String>,
    /// Answer HTTP errors Apache generates with this URL path (ErrorDocument;
    /// repeatable).
    #[arg(long, num_args = 2, value_names = ["STATUS", "URL-PATH"], action = ArgAction::Append)]
    pub error_document: Vec<String>,
    /// Let Apache's error documents replace the application's error responses
    /// (WSGIErrorOverride).
    #[arg(long)]
    pub error_override: bool,
    /// Proxy requests below URL-PATH to URL (mod_proxy; repeatable).
    #[arg(long, alias = "proxy-url-alias", num_args = 2, value_names = ["URL-PATH", "URL"], action = ArgAction::Append)]
    pub proxy_mount_point: Vec<String>,
    /// Proxy requests for HOSTNAME to URL (repeatable).
    #[arg(long, num_args = 2, value_names = ["HOSTNAME", "URL"], action = ArgAction::Append)]
    pub proxy_virtual_host: Vec<String>,
    /// Compress text responses (HTML, CSS, JavaScript, JSON, XML, plain text) with
    /// mod_deflate.
    #[arg(long)]
    pub compress_responses: bool,
    /// Let the application read server metrics (WSGIServerMetrics On).
    #[arg(long)]
    pub server_metrics: bool,
    /// Serve Apache's status page (mod_status) at /server-status to clients on this
    /// host.
    #[arg(long)]
    pub server_status: bool,
    /// Telemetry target (WSGITelemetryService), "unix:/path/to/socket".
    #[arg(long, value_name = "TARGET")]
    pub telemetry_service: Option<String>,
    /// Run mod_wsgi-telemetry's ingester and web UI beside the application.
    #[arg(long)]
    pub enable_telemetry: bool,
    /// Port of the telemetry web UI on 127.0.0.1.
    #[arg(long, default_value_t = 8888, value_name = "NUMBER")]
    pub telemetry_ui_port: u16,
    /// Telemetry sampling interval.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub telemetry_interval: f64,
    /// Report requests still running after this long (WSGISlowRequests).
    #[arg(long, value_name = "SECONDS")]
    pub slow_requests: Option<f64>,
    /// Run Python without the GIL (WSGIFreeThreading On; needs a free-threaded
    /// Python).
    #[arg(long)]
    pub free_threading: bool,
    /// A WSGITelemetryOptions line, like "+CaptureUserAgent" (repeatable).
    #[arg(long, value_name = "ARGS", action = ArgAction::Append)]
    pub telemetry_options: Vec<String>,
    /// Python script deciding host access (WSGIAccessScript).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub host_access_script: Option<PathBuf>,
    /// Python script authenticating users (WSGIAuthUserScript).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_user_script: Option<PathBuf>,
    /// Authentication scheme for --auth-user-script: Basic or Digest.
    #[arg(long, default_value = "Basic", value_name = "TYPE")]
    pub auth_type: String,
    /// Python script listing a user's groups (WSGIAuthGroupScript).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_group_script: Option<PathBuf>,
    /// Group users must be in with --auth-group-script.
    #[arg(long, default_value = "wsgi", value_name = "NAME")]
    pub auth_group: String,
    /// Apache rewrite rules file, included with RewriteEngine On.
    #[arg(long, value_name = "FILE-PATH")]
    pub rewrite_rules: Option<PathBuf>,
    /// WSGI application handling document-root files with this extension
    /// (WSGIHandlerScript; repeatable).
    #[arg(long, num_args = 2, value_names = ["EXTENSION", "SCRIPT-PATH"], action = ArgAction::Append)]
    pub add_handler: Vec<String>,
    /// Accept request bodies sent with chunked transfer encoding (WSGIChunkedRequest).
    #[arg(long)]
    pub chunked_request: bool,
    /// Run executable .cgi files of the document root as CGI scripts.
    #[arg(long)]
    pub with_cgi: bool,
    /// Serve mod_wsgi's documentation at /__wsgi__/docs.
    #[arg(long)]
    pub enable_docs: bool,
    /// Let Apache use sendfile() for static files and wsgi.file_wrapper.
    #[arg(long)]
    pub enable_sendfile: bool,
    #[arg(long, hide = true)]
    pub with_php5: bool,
}
