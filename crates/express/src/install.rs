//! module-config, module-location and install-module: using mod_wsgi_rs from a system
//! Apache instead of a generated server root.

use crate::cli::{InstallArgs, ModuleArgs};
use crate::locate;
use crate::python_home::python_home;
use std::fs;
use std::path::{Path, PathBuf};

/// The lines a system Apache needs to load the module.
pub fn config_lines(module: &Path, python_home: Option<&Path>) -> String {
    let mut text = format!("LoadModule wsgi_module \"{}\"\n", module.display());
    if let Some(home) = python_home {
        text.push_str(&format!("WSGIPythonHome \"{}\"\n", home.display()));
    }
    text
}

pub fn module_config(args: &ModuleArgs) -> Result<(), String> {
    let module = locate::module(args, locate::modules_directory(args).ok().as_deref())?;
    let home = python_home(args, &module)?;
    print!("{}", config_lines(&module, home.as_deref()));
    Ok(())
}

pub fn module_location(args: &ModuleArgs) -> Result<(), String> {
    let modules_dir = locate::modules_directory(args).ok();
    println!(
        "{}",
        locate::module(args, modules_dir.as_deref())?.display()
    );
    Ok(())
}

fn conf_dir() -> PathBuf {
    std::env::var_os("APACHE_CONFDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/apache2"))
}

const CONF_TEXT: &str = "# Written by wsgi-express install-module: process-wide settings of mod_wsgi_rs.\n\
<IfModule mod_wsgi.c>\n\
    # Python installation or virtual environment (the Python version the module was built for).\n\
    #WSGIPythonHome /srv/venvs/site\n\
    # Refuse to run applications inside Apache's own child processes (daemon mode only).\n\
    #WSGIRestrictEmbedded Off\n\
</IfModule>\n";

pub fn install_module(args: &InstallArgs) -> Result<(), String> {
    let modules_dir = locate::modules_directory(&args.module)?;
    let module = locate::module(&args.module, Some(&modules_dir))?;
    let home = python_home(&args.module, &module)?;
    let available = args
        .mods_available
        .clone()
        .unwrap_or_else(|| conf_dir().join("mods-available"));
    let enabled = available.with_file_name("mods-enabled");
    for clash in ["wsgi.load", "wsgi.conf"] {
        if enabled.join(clash).exists() {
            return Err(format!(
                "the C mod_wsgi is enabled ({}); both define wsgi_module, so disable it first: a2dismod wsgi",
                enabled.join(clash).display()
            ));
        }
    }
    let target = modules_dir.join(locate::MODULE_FILE);
    if locate::absolute(&module) != locate::absolute(&target) {
        let tmp = target.with_extension("so.new");
        fs::copy(&module, &tmp)
            .and_then(|_| fs::rename(&tmp, &target))
            .map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    module.display(),
                    target.display()
                )
            })?;
    }
    fs::create_dir_all(&available)
        .map_err(|e| format!("cannot create {}: {e}", available.display()))?;
    let load = available.join("wsgi_rs.load");
    let load_text = format!(
        "# Written by wsgi-express install-module. Do not enable together with the C\n# mod_wsgi (wsgi.load): both define wsgi_module.\n{}",
        config_lines(&target, None)
    );
    fs::write(&load, load_text).map_err(|e| format!("cannot write {}: {e}", load.display()))?;
    let conf = available.join("wsgi_rs.conf");
    let mut conf_text = CONF_TEXT.to_owned();
    if let Some(home) = home {
        conf_text = conf_text.replace(
            "    #WSGIPythonHome /srv/venvs/site\n",
            &format!("    WSGIPythonHome \"{}\"\n", home.display()),
        );
    }
    if !conf.exists() {
        fs::write(&conf, conf_text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    }
    println!(
        "wsgi-express: installed {}\n  wrote {} and {}\n  enable with: a2enmod wsgi_rs",
        target.display(),
        load.display(),
        conf.display()
    );
    Ok(())
}
