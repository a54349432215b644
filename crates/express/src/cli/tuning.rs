//! Options that size Apache and the daemon processes, and their timeouts and buffers,
//! with mod_wsgi-express's names and defaults.

use super::MpmName;
use clap::{ArgAction, Args};

/// A fraction between 0 and 1, as mod_wsgi-express's worker percentages.
fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct TuningArgs {
    /// Most client connections Apache accepts at once [default: twice the daemon
    /// threads, at least 20; never less than processes x threads].
    #[arg(long, value_name = "NUMBER")]
    pub max_clients: Option<u32>,
    /// Apache workers started at once, as a fraction (0-1) of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub initial_workers: Option<f64>,
    /// Fewest idle Apache workers kept, as a fraction (0-1) of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub minimum_spare_workers: Option<f64>,
    /// Most idle Apache workers kept, as a fraction (0-1) of --max-clients.
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub maximum_spare_workers: Option<f64>,
    /// Preferred MPM; repeat to give an order of preference [default: event, worker,
    /// prefork].
    #[arg(long, value_enum, value_name = "NAME", action = ArgAction::Append)]
    pub server_mpm: Vec<MpmName>,

    /// CPU seconds a daemon process may use before it is replaced (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub cpu_time_limit: u64,
    /// Grace period for requests when the daemons are replaced on a graceful restart
    /// [default: --graceful-timeout].
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub eviction_timeout: u64,
    /// Seconds a daemon may hold the GIL stuck before it is replaced.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub deadlock_timeout: u64,
    /// URL path whose requests do not count as activity for --inactivity-timeout,
    /// such as a health check (repeatable).
    #[arg(long, value_name = "URL-PATH", action = ArgAction::Append)]
    pub ignore_activity: Vec<String>,
    /// With a stuck request, inject mod_wsgi.RequestTimeout into its thread and give it
    /// this long to unwind before the process is replaced (0: replace at once).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub interrupt_timeout: u64,
    /// ProxyTimeout for --proxy-mount-point backends [default: --socket-timeout].
    #[arg(long, value_name = "SECONDS")]
    pub proxy_timeout: Option<u64>,
    /// Seconds to receive the request line and headers (mod_reqtimeout).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Hard limit for the headers when --header-min-rate extends the timeout.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub header_max_timeout: u64,
    /// Bytes of headers that extend --header-timeout by a second.
    #[arg(long, default_value_t = 500, value_name = "BYTES")]
    pub header_min_rate: u64,
    /// Seconds to receive the request body (mod_reqtimeout).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub body_timeout: u64,
    /// Hard limit for the body when --body-min-rate extends the timeout (0: none).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub body_max_timeout: u64,
    /// Bytes of body that extend --body-timeout by a second.
    #[arg(long, default_value_t = 500, value_name = "BYTES")]
    pub body_min_rate: u64,
    /// Listen backlog of Apache's sockets (ListenBacklog).
    #[arg(long, default_value_t = 500, value_name = "NUMBER")]
    pub server_backlog: u32,
    /// Listen backlog of the daemon processes' socket (listen-backlog=).
    #[arg(long, default_value_t = 100, value_name = "NUMBER")]
    pub daemon_backlog: u32,
    /// Socket send buffer towards the daemons [default: the module's, 1 MiB; 0: the
    /// system's].
    #[arg(long, value_name = "NUMBER")]
    pub send_buffer_size: Option<u64>,
    /// Socket receive buffer from the daemons (0: the system's).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub receive_buffer_size: u64,
    /// Buffer for a daemon's response headers (0: 32768).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub header_buffer_size: u64,
    /// Response bytes passed down Apache's filters without a flush (0: 8 MiB).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub response_buffer_size: u64,
    /// Seconds a write of the response to the client may take (0: --socket-timeout).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub response_socket_timeout: u64,
    /// Milliseconds to wait for more response data before flushing to the client.
    #[arg(long, default_value_t = 5, value_name = "MILLISECONDS")]
    pub response_flush_delay: u64,
    /// Python's thread switch interval in seconds (sys.setswitchinterval) [default:
    /// Python's 0.005].
    #[arg(long, value_name = "SECONDS")]
    pub switch_interval: Option<f64>,
}
