//! `python::run_exit_handlers` as a process runs it before exiting: the `atexit`
//! callbacks of every interpreter, sub-interpreters first and the main interpreter last,
//! each once, a callback that raises not keeping the others from running.

mod common;

use common::{eval, exec, python};
use mod_wsgi_engine::python::{run_exit_handlers, with_interpreter};

/// Registers an atexit callback that appends NAME to the file LOG, then raises if FAIL.
const ON_EXIT: &str = r#"
import atexit
def on_exit():
    with open(LOG, "a") as f:
        f.write(NAME + "\n")
    if FAIL:
        raise RuntimeError("cleanup failed")
atexit.register(on_exit)
"#;

#[test]
fn every_interpreters_atexit_callbacks_run_once_main_last() {
    python();
    let log = common::scratch().join("exits.log");
    let register = |group: &str, name: &str, fail: bool| {
        let fail = if fail { "True" } else { "False" };
        let code = format!("LOG = {log:?}\nNAME = {name:?}\nFAIL = {fail}\n{ON_EXIT}");
        with_interpreter(group, |py, _| {
            exec(py, &code);
        })
        .expect("entered");
    };
    register("", "main", false);
    register("exit-one", "one", true);
    register("exit-two", "two", false);
    run_exit_handlers();
    run_exit_handlers();
    let ran = std::fs::read_to_string(&log).expect("callbacks ran");
    let mut lines: Vec<&str> = ran.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("main"),
        "the main interpreter's run last: {ran}"
    );
    lines.sort_unstable();
    assert_eq!(lines, ["one", "two"], "each once, a failing one included");
    let usable: i64 = with_interpreter("exit-one", |py, _| eval(py, "result = 1 + 1"))
        .expect("interpreters are not finalised");
    assert_eq!(usable, 2);
}
