//! Generates Rust bindings for the httpd/APR headers, and records the directory of a
//! private libpython (rpath) so Apache loads the one the module was built against.
//!
//! Header locations come from `apxs -q` unless `APACHE_INCLUDE_DIR` / `APR_INCLUDE_DIR` are
//! set; `APXS` names the apxs binary. Missing headers stop the build with the package name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn apxs_query(apxs: &str, var: &str) -> Option<String> {
    let out = Command::new(apxs).args(["-q", var]).output().ok()?;
    let value = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

fn include_dir(env_var: &str, apxs: &str, query: &str, fallback: &str) -> PathBuf {
    println!("cargo:rerun-if-env-changed={env_var}");
    std::env::var(env_var)
        .ok()
        .or_else(|| apxs_query(apxs, query))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback))
}

fn require_header(dir: &Path, header: &str, package: &str) {
    if !dir.join(header).exists() {
        panic!(
            "\n\nmod_wsgi_rs: cannot find {header} in {}.\n\
             Install the development headers (Debian/Ubuntu: `apt-get install {package}`),\n\
             or point APACHE_INCLUDE_DIR / APR_INCLUDE_DIR / APXS at them.\n",
            dir.display()
        );
    }
}

/// The directory of the shared libpython that PYO3_PYTHON's interpreter was built with,
/// when it is not one the dynamic loader searches anyway (a pyenv or /opt build): the
/// module records it (rpath), so Apache finds that libpython without LD_LIBRARY_PATH.
fn private_libpython_dir() -> Option<String> {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").ok()?;
    let out = Command::new(&python)
        .args([
            "-c",
            // A copied installation keeps its build's LIBDIR in sysconfig: its own
            // lib/ wins when the library is there.
            "import os, sys, sysconfig\n\
             lib = sysconfig.get_config_var('LDLIBRARY') or ''\n\
             dirs = [os.path.join(sys.base_prefix, 'lib'), sysconfig.get_config_var('LIBDIR') or '']\n\
             print(next((d for d in dirs if d and lib and os.path.exists(os.path.join(d, lib))), ''))\n\
             print(sysconfig.get_config_var('Py_ENABLE_SHARED') or 0)",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let libdir = lines.next()?.trim().to_owned();
    let shared = lines.next()?.trim() == "1";
    let system = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib"];
    let searched = system.contains(&libdir.as_str())
        || libdir.starts_with("/usr/lib/") && libdir.ends_with("-linux-gnu");
    (shared && !libdir.is_empty() && !searched).then_some(libdir)
}

fn main() {
    if let Some(libdir) = private_libpython_dir() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{libdir}");
    }
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-env-changed=APXS");
    let apxs = std::env::var("APXS").unwrap_or_else(|_| "apxs".to_owned());
    let httpd_inc = include_dir(
        "APACHE_INCLUDE_DIR",
        &apxs,
        "INCLUDEDIR",
        "/usr/include/apache2",
    );
    let apr_inc = include_dir(
        "APR_INCLUDE_DIR",
        &apxs,
        "APR_INCLUDEDIR",
        "/usr/include/apr-1.0",
    );
    require_header(&httpd_inc, "httpd.h", "apache2-dev");
    require_header(&apr_inc, "apr.h", "libapr1-dev (pulled in by apache2-dev)");

    let cppflags = apxs_query(&apxs, "EXTRA_CPPFLAGS")
        .unwrap_or_else(|| "-DLINUX -D_REENTRANT -D_GNU_SOURCE".to_owned());
    let mut clang_args: Vec<String> = vec![
        format!("-I{}", httpd_inc.display()),
        format!("-I{}", apr_inc.display()),
    ];
    clang_args.extend(cppflags.split_whitespace().map(str::to_owned));

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&clang_args)
        .layout_tests(false)
        .generate_comments(false)
        .derive_default(true)
        .prepend_enum_name(false)
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .allowlist_function(
            "ap_(hook_(handler|post_config|child_init|translate_name|fixups)|rwrite|rflush|\
             set_content_type|set_content_length|log_error_|log_rerror_|get_module_config|\
             setup_client_block|should_client_block|get_client_block|add_common_vars|\
             add_cgi_vars|mpm_query|state_query|getword_conf|pass_brigade|\
             server_root_relative|add_version_component|check_cmd_context|allow_options|\
             pregcomp|regexec|pregsub|get_server_port|discard_request_body|\
             get_server_name|escape_html2|get_remote_host|get_limit_req_body|close_listeners|\
             hook_check_config|hook_pre_config|runtime_dir_relative|fflush|hook_monitor|\
             hook_log_transaction|get_brigade|get_conn_socket|run_default_port|\
             get_server_description|get_server_built|show_mpm|register_auth_provider|\
             hook_check_access|some_auth_required|walk_config|\
             run_generate_log_id)",
        )
        .allowlist_function(
            "apr_(palloc|pstrdup|pstrmemdup|table_(get|set|setn|add|unset)|\
             pool_cleanup_(register|null|kill)|brigade_(create|cleanup|insert_file|write)|\
             os_file_put|strerror|file_close|proc_other_child_(register|unregister)|\
             pool_userdata_(get|set)|proc_other_child_refresh_all|brigade_flatten|os_sock_get|\
             socket_timeout_(get|set))",
        )
        .allowlist_type(
            "module_struct|command_struct|request_rec|server_rec|conn_rec|cmd_parms|\
             process_rec|apr_table_entry_t|apr_array_header_t|ap_filter_t|ap_filter_rec_t|\
             ap_regex_t|ap_regmatch_t|apr_finfo_t|core_dir_config|apr_proc_t|\
             unixd_config_rec|core_server_config|authn_provider|authz_provider",
        )
        .allowlist_var(
            "AP_SQ_.*|MODULE_MAGIC_.*|OK|DECLINED|DONE|HTTP_.*|APR_HOOK_.*|RSRC_CONF|\
             ACCESS_CONF|OR_.*|APLOG_.*|AP_MPMQ_.*|APR_SUCCESS|APR_EOF|REQUEST_.*|OPT_.*|\
             AP_FTYPE_.*|APR_FOPEN_.*|APR_SENDFILE_ENABLED|APR_READ|GLOBAL_ONLY|NOT_IN_.*|\
             AP_REG_.*|M_GET|M_POST|AP_CONN_.*|AP_MPMQ_.*|APR_OC_REASON_.*|ap_unixd_config|\
             ap_server_conf|AP_SERVER_(MAJOR|MINOR)VERSION_NUMBER|AP_SERVER_PATCHLEVEL_NUMBER|\
             AP_AUTH_INTERNAL_.*|REMOTE_(HOST|NAME|NOLOOKUP)",
        )
        .generate()
        .expect("mod_wsgi_rs: bindgen failed on the httpd/APR headers");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("apache_bindings.rs"))
        .expect("write bindings");
}
