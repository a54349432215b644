//! Records the CPython the engine links (pyo3 follows PYO3_PYTHON): its version for the
//! server banner and its executable, from which the interpreter finds its home.

use std::process::Command;

fn main() {
    // Py_3_12 and the like, for the CPython API that only some versions have.
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .args([
            "-c",
            "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); print(sys.executable); \
             print(1 if sysconfig.get_config_var('Py_GIL_DISABLED') else 0)",
        ])
        .output()
        .unwrap_or_else(|e| panic!("mod_wsgi_engine: cannot run {python}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim().to_owned();
    let executable = lines.next().unwrap_or_default().trim().to_owned();
    let free_threaded = lines.next().unwrap_or_default().trim() == "1";
    println!("cargo:rustc-env=MOD_WSGI_RS_PYTHON_VERSION={version}");
    println!("cargo:rustc-env=MOD_WSGI_RS_PYTHON_EXECUTABLE={executable}");
    println!("cargo:rustc-env=MOD_WSGI_RS_PYTHON_FREE_THREADED={free_threaded}");
}
