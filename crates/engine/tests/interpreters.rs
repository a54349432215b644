//! Application groups and their interpreters, in-process: "" is the main interpreter,
//! every other name a sub-interpreter of its own, shared by every thread; each keeps its
//! own modules; `threading.local` values last for their thread; a panic inside
//! `with_interpreter` reaches the caller and leaves the interpreter usable; calls nest,
//! into the same interpreter or another one; many threads serve requests at once.

mod common;

use common::{eval, exec, interpreter_id, python};
use mod_wsgi_engine::python::with_interpreter;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier};

/// The interpreter id and `mod_wsgi.application_group` seen inside `group`.
fn identity(group: &str) -> (i64, String) {
    with_interpreter(group, |py, interp| {
        assert_eq!(interp.name, group);
        assert_eq!(interp.is_main(), group.is_empty());
        let seen: String = eval(py, "import mod_wsgi\nresult = mod_wsgi.application_group");
        (interpreter_id(py), seen)
    })
    .expect("interpreter entered")
}

fn main_id() -> i64 {
    with_interpreter("", |py, _| {
        let code = format!(
            "{}\n_main = _subinterpreters.get_main()\n\
             result = int(_main[0] if isinstance(_main, tuple) else _main)",
            common::INTERPRETER_ID
        );
        eval(py, &code)
    })
    .expect("main interpreter entered")
}

#[test]
fn the_empty_group_is_the_main_interpreter_and_each_named_group_has_its_own() {
    python();
    let (main, main_group) = identity("");
    assert_eq!(main, main_id(), "\"\" runs in the main interpreter");
    assert_eq!(main_group, "");
    let (alpha, alpha_group) = identity("alpha");
    let (beta, beta_group) = identity("beta");
    assert_eq!(
        (alpha_group.as_str(), beta_group.as_str()),
        ("alpha", "beta")
    );
    assert_ne!(alpha, main);
    assert_ne!(beta, main);
    assert_ne!(alpha, beta, "two groups, two interpreters");
    assert_eq!(identity("alpha").0, alpha, "a group keeps its interpreter");
}

#[test]
fn module_state_belongs_to_its_interpreter() {
    python();
    let set = |group: &str, value: &str| {
        with_interpreter(group, |py, _| {
            exec(
                py,
                &format!(
                    "import sys, types\n\
                     sys.modules['engine_state'] = types.ModuleType('engine_state')\n\
                     sys.modules['engine_state'].value = {value:?}"
                ),
            );
        })
        .expect("entered")
    };
    let get = |group: &str| -> Option<String> {
        with_interpreter(group, |py, _| {
            eval(
                py,
                "import sys\n\
                 m = sys.modules.get('engine_state')\n\
                 result = None if m is None else m.value",
            )
        })
        .expect("entered")
    };
    set("state-one", "one");
    assert_eq!(get("state-two"), None, "not seen by another group");
    assert_eq!(get(""), None, "not seen by the main interpreter");
    set("state-two", "two");
    assert_eq!(
        get("state-one").as_deref(),
        Some("one"),
        "kept across calls"
    );
    assert_eq!(get("state-two").as_deref(), Some("two"));
}

#[test]
fn a_group_is_one_interpreter_for_every_thread() {
    python();
    let here = with_interpreter("threads", |py, _| {
        exec(py, "import builtins\nbuiltins.engine_marker = 'set here'");
        interpreter_id(py)
    })
    .expect("entered");
    let there = std::thread::spawn(|| {
        with_interpreter("threads", |py, _| {
            let marker: String = eval(py, "import builtins\nresult = builtins.engine_marker");
            (interpreter_id(py), marker)
        })
        .expect("entered from another thread")
    })
    .join()
    .expect("thread finished");
    assert_eq!(there, (here, "set here".to_owned()));
}

#[test]
fn a_panic_reaches_the_caller_and_the_interpreter_stays_usable() {
    python();
    for group in ["", "panics"] {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            with_interpreter(group, |py, _| {
                exec(py, "import builtins\nbuiltins.before_panic = 1");
                panic!("application bug in {group:?}");
            })
        }));
        let payload = caught.expect_err("the panic propagates");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert_eq!(message, &format!("application bug in {group:?}"));
        let after: i64 = with_interpreter(group, |py, _| {
            eval(py, "import builtins\nresult = builtins.before_panic + 1")
        })
        .expect("the interpreter can be entered again");
        assert_eq!(after, 2, "state from before the panic is kept");
    }
}

#[test]
fn a_nested_call_into_the_same_interpreter_sees_its_state() {
    python();
    let (outer, inner, value) = with_interpreter("nest-same", |py, _| {
        exec(py, "import builtins\nbuiltins.nested_value = 'outer'");
        let outer = interpreter_id(py);
        let (inner, value) = with_interpreter("nest-same", |py, _| {
            let value: String = eval(py, "import builtins\nresult = builtins.nested_value");
            (interpreter_id(py), value)
        })
        .expect("nested entry");
        (outer, inner, value)
    })
    .expect("entered");
    assert_eq!(inner, outer);
    assert_eq!(value, "outer");
}

#[test]
fn a_nested_call_into_another_interpreter_returns_to_the_caller() {
    python();
    let main = identity("").0;
    let (outer, inner, in_main, back, kept) = with_interpreter("nest-outer", |py, _| {
        exec(py, "import builtins\nbuiltins.outer_value = 41");
        let outer = interpreter_id(py);
        // A group used for the first time here: its interpreter is created meanwhile.
        let inner = with_interpreter("nest-inner", |py, _| interpreter_id(py)).expect("inner");
        let in_main = with_interpreter("", |py, _| interpreter_id(py)).expect("main");
        let back = interpreter_id(py);
        let kept: i64 = eval(py, "import builtins\nresult = builtins.outer_value + 1");
        (outer, inner, in_main, back, kept)
    })
    .expect("entered");
    assert_ne!(inner, outer);
    assert_eq!(in_main, main);
    assert_eq!(back, outer, "the caller's interpreter is current again");
    assert_eq!(kept, 42);
}

#[test]
fn a_panic_in_a_nested_call_leaves_the_outer_interpreter_usable() {
    python();
    let (outer, after, caught) = with_interpreter("nest-panic-outer", |py, _| {
        let outer = interpreter_id(py);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            with_interpreter("nest-panic-inner", |_, _| panic!("inner failure"))
        }))
        .is_err();
        (outer, interpreter_id(py), caught)
    })
    .expect("entered");
    assert!(caught, "the inner panic reaches the outer caller");
    assert_eq!(after, outer);
    let inner_again = with_interpreter("nest-panic-inner", |py, _| interpreter_id(py));
    assert!(inner_again.is_ok_and(|id| id != outer));
}

#[test]
fn thread_locals_belong_to_their_thread_and_last_across_calls() {
    python();
    with_interpreter("locals", |py, _| {
        exec(
            py,
            "import builtins, threading\nbuiltins.engine_local = threading.local()",
        );
    })
    .expect("entered");
    let read = || -> String {
        with_interpreter("locals", |py, _| {
            eval(
                py,
                "import builtins\nresult = getattr(builtins.engine_local, 'value', '<unset>')",
            )
        })
        .expect("entered")
    };
    let both_set = Arc::new(Barrier::new(2));
    let threads: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|value| {
            let both_set = both_set.clone();
            std::thread::spawn(move || {
                with_interpreter("locals", |py, _| {
                    exec(
                        py,
                        &format!("import builtins\nbuiltins.engine_local.value = {value:?}"),
                    );
                })
                .expect("entered");
                both_set.wait();
                (value, read())
            })
        })
        .collect();
    for thread in threads {
        let (set, seen) = thread.join().expect("thread finished");
        assert_eq!(seen, set, "each thread sees its own value in a later call");
    }
    assert_eq!(read(), "<unset>", "another thread has none");
}

#[test]
fn many_threads_serve_requests_in_several_interpreters_at_once() {
    python();
    let path = common::script(
        "concurrent.wsgi",
        r#"
import time
def application(environ, start_response):
    time.sleep(0)
    start_response("200 OK", [])
    yield environ["PATH_INFO"].encode()
    time.sleep(0)
    yield b"!"
"#,
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let group = if (t + i) % 2 == 0 { "" } else { "concurrent" };
                    let mut req = common::request(&path, group);
                    let path_info = format!("/thread-{t}/request-{i}");
                    req.environ.set("PATH_INFO", &path_info);
                    let (outcome, record) = common::serve(req, b"");
                    assert_eq!(outcome, mod_wsgi_engine::wsgi::Outcome::Complete);
                    assert_eq!(record.body_text(), format!("{path_info}!"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("every request answered correctly");
    }
}
