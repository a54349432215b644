//! wsgi-express: serve a WSGI application through Apache httpd and mod_wsgi_rs with one
//! command, or install the module into a system Apache. Errors are one line and a
//! non-zero exit, never a backtrace.

mod access;
mod cli;
mod conf;
mod debug;
mod features;
mod hosts;
mod install;
mod launch;
mod locate;
mod logs;
mod python_home;
mod server;
mod services;
mod telemetry;
mod users;

use cli::{Cli, Command};

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("wsgi-express: internal error: {info}");
    }));
    let cli = Cli::parse_args();
    let result = match cli.command {
        Command::StartServer(args) => server::start(args, false),
        Command::SetupServer(args) => server::start(args, true),
        Command::ModuleConfig(args) => install::module_config(&args),
        Command::ModuleLocation(args) => install::module_location(&args),
        Command::InstallModule(args) => install::install_module(&args),
    };
    if let Err(message) = result {
        eprintln!("wsgi-express: error: {message}");
        std::process::exit(1);
    }
}
