//! Options for HTTPS, name-based virtual hosts and trusted proxies, with
//! mod_wsgi-express's names and meaning.

use clap::{ArgAction, Args};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct HttpsArgs {
    /// Enable HTTP/2 (mod_http2): h2 over HTTPS, h2c over plain HTTP.
    #[arg(long)]
    pub http2: bool,
    /// Port for HTTPS requests (mod_ssl); needs a certificate and its key.
    #[arg(long, alias = "ssl-port", value_name = "NUMBER")]
    pub https_port: Option<u16>,
    /// The server's certificate (PEM).
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_file: Option<PathBuf>,
    /// The private key of --ssl-certificate-file (PEM).
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_key_file: Option<PathBuf>,
    /// Common path of the certificate and key: PATH.crt and PATH.key.
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate: Option<PathBuf>,
    /// CA certificates for client authentication; clients must present a certificate
    /// for the whole site, or only below --ssl-verify-client URLs.
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_ca_certificate_file: Option<PathBuf>,
    /// Require a client certificate only below this URL path (repeatable).
    #[arg(long, value_name = "URL-PATH", action = ArgAction::Append)]
    pub ssl_verify_client: Vec<String>,
    /// Intermediate CA certificates sent with the server's certificate.
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_chain_file: Option<PathBuf>,
    /// Pass the standard SSL_* variables in the WSGI environ (SSLOptions +StdEnvVars).
    #[arg(long)]
    pub ssl_environment: bool,
    /// Redirect every plain HTTP request to the same URL over HTTPS.
    #[arg(long)]
    pub https_only: bool,
    /// Strict-Transport-Security header value sent with --https-only (like
    /// "max-age=31536000").
    #[arg(long, value_name = "PARAMS")]
    pub hsts_policy: Option<String>,
    /// Another host name the site answers to; may hold wildcards (repeatable).
    #[arg(long, value_name = "HOSTNAME", action = ArgAction::Append)]
    pub server_alias: Vec<String>,
    /// With --server-name, still answer requests for other host names when the client
    /// is this host (otherwise they are refused with 403).
    #[arg(long)]
    pub allow_localhost: bool,
    /// A header set by a trusted front-end proxy whose value replaces the request's
    /// own (X-Forwarded-For, X-Forwarded-Proto, ...; WSGITrustedProxyHeaders;
    /// repeatable).
    #[arg(long, value_name = "HEADER-NAME", action = ArgAction::Append)]
    pub trust_proxy_header: Vec<String>,
    /// Address or subnet of a proxy whose --trust-proxy-header headers are believed
    /// [default: any client] (WSGITrustedProxies; repeatable).
    #[arg(long, value_name = "IP-ADDRESS/SUBNET", action = ArgAction::Append)]
    pub trust_proxy: Vec<String>,
}
