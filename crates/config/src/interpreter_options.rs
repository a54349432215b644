//! `<WSGIInterpreterOptions [process-group=NAME] [application-group=NAME]>`: per-interpreter
//! settings for the interpreters whose process group and application group match, as
//! mod_wsgi 6 resolves them. A block's specificity is how many selectors it has; for each
//! setting the most specific matching block wins (at equal specificity the later one),
//! over the top-level directive. `WSGIPythonPath` adds up instead: every matching block's
//! directories, least specific first, each layer put in front of the ones before.
//! `WSGIPerInterpreterGIL` in a block gives (or withholds) an own GIL to the matching
//! sub-interpreters; `WSGIFreeThreading` is accepted for the warning it gives (no
//! free-threaded build).

use crate::{ConfigError, parse_on_off, positive_seconds};
use std::time::Duration;

/// The directives a block may hold.
pub const INTERPRETER_OPTION_DIRECTIVES: [&str; 7] = [
    "WSGIPerInterpreterGIL",
    "WSGIFreeThreading",
    "WSGISwitchInterval",
    "WSGIPythonPath",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
];

/// Refuses a directive a `<WSGIInterpreterOptions>` block may not hold (in any case, as
/// Apache matches directive names).
pub fn check_interpreter_option(name: &str) -> Result<(), ConfigError> {
    if INTERPRETER_OPTION_DIRECTIVES
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
    {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        directive: "<WSGIInterpreterOptions>",
        reason: format!(
            "{name} is not allowed inside it (only {})",
            INTERPRETER_OPTION_DIRECTIVES.join(", ")
        ),
    })
}

/// One `<WSGIInterpreterOptions>` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterpreterOptions {
    /// None matches any process group; "" is embedded mode (`%{GLOBAL}`).
    pub process_group: Option<String>,
    /// None matches any application group; "" is the main interpreter (`%{GLOBAL}`).
    pub application_group: Option<String>,
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
    pub switch_interval: Option<Duration>,
    pub python_path: Vec<String>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
}

/// What the blocks matching one interpreter say; None leaves the top-level value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedInterpreterOptions {
    /// Whether the interpreter gets its own GIL (PEP 684; sub-interpreters only).
    pub per_interpreter_gil: Option<bool>,
    /// The interval, and whether the block it came from selects an application group.
    pub switch_interval: Option<(Duration, bool)>,
    /// Directory lists of the matching blocks, least specific first.
    pub python_path_layers: Vec<Vec<String>>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
}

fn group_selector(value: &str) -> String {
    if value == "%{GLOBAL}" {
        String::new()
    } else {
        value.to_owned()
    }
}

impl InterpreterOptions {
    /// The block's selectors: the opening tag's words (a trailing `>` already removed).
    pub fn parse_selectors(args: &[String]) -> Result<Self, ConfigError> {
        let mut block = InterpreterOptions::default();
        for (name, value) in crate::parse_options(
            "<WSGIInterpreterOptions>",
            args,
            &["process-group", "application-group"],
        )? {
            match name {
                "process-group" => block.process_group = Some(group_selector(value)),
                _ => block.application_group = Some(group_selector(value)),
            }
        }
        Ok(block)
    }

    /// Applies one directive written inside the block.
    pub fn apply(&mut self, directive: &str, args: &[String]) -> Result<(), ConfigError> {
        let one = || -> Result<&str, ConfigError> {
            match args {
                [value] => Ok(value.as_str()),
                _ => Err(ConfigError::Invalid {
                    directive: "<WSGIInterpreterOptions>",
                    reason: format!("{directive} takes one argument"),
                }),
            }
        };
        match directive {
            "WSGIPerInterpreterGIL" => {
                self.per_interpreter_gil = Some(parse_on_off("WSGIPerInterpreterGIL", one()?)?)
            }
            "WSGIFreeThreading" => {
                self.free_threading = Some(parse_on_off("WSGIFreeThreading", one()?)?)
            }
            "WSGISwitchInterval" => {
                self.switch_interval = Some(positive_seconds("WSGISwitchInterval", one()?)?)
            }
            "WSGIPythonPath" => self.python_path.extend(
                one()?
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned),
            ),
            "WSGIRestrictStdin" => {
                self.restrict_stdin = Some(parse_on_off("WSGIRestrictStdin", one()?)?)
            }
            "WSGIRestrictStdout" => {
                self.restrict_stdout = Some(parse_on_off("WSGIRestrictStdout", one()?)?)
            }
            "WSGIRestrictSignal" => {
                self.restrict_signal = Some(parse_on_off("WSGIRestrictSignal", one()?)?)
            }
            other => {
                return Err(ConfigError::Invalid {
                    directive: "<WSGIInterpreterOptions>",
                    reason: format!(
                        "{other} is not allowed inside it (only {})",
                        INTERPRETER_OPTION_DIRECTIVES.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    fn matches(&self, process_group: &str, application_group: &str) -> bool {
        self.process_group
            .as_deref()
            .is_none_or(|p| p == process_group)
            && self
                .application_group
                .as_deref()
                .is_none_or(|a| a == application_group)
    }

    fn specificity(&self) -> usize {
        usize::from(self.process_group.is_some()) + usize::from(self.application_group.is_some())
    }
}

/// The settings of the interpreter `application_group` in process group `process_group`
/// ("" for embedded mode) from `blocks`, in the order they were written.
pub fn resolve_interpreter_options(
    blocks: &[InterpreterOptions],
    process_group: &str,
    application_group: &str,
) -> ResolvedInterpreterOptions {
    let mut matching: Vec<(usize, &InterpreterOptions)> = blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.matches(process_group, application_group))
        .collect();
    matching.sort_by_key(|&(order, b)| (b.specificity(), order));
    let mut out = ResolvedInterpreterOptions::default();
    for (_, b) in matching {
        if let Some(interval) = b.switch_interval {
            out.switch_interval = Some((interval, b.application_group.is_some()));
        }
        out.per_interpreter_gil = b.per_interpreter_gil.or(out.per_interpreter_gil);
        out.restrict_stdin = b.restrict_stdin.or(out.restrict_stdin);
        out.restrict_stdout = b.restrict_stdout.or(out.restrict_stdout);
        out.restrict_signal = b.restrict_signal.or(out.restrict_signal);
        if !b.python_path.is_empty() {
            out.python_path_layers.push(b.python_path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interpreter_option_directives_may_be_in_a_block() {
        assert!(check_interpreter_option("WSGIPythonPath").is_ok());
        assert!(check_interpreter_option("wsgipythonpath").is_ok());
        let err = check_interpreter_option("WSGIScriptAlias").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "<WSGIInterpreterOptions>: WSGIScriptAlias is not allowed inside it (only {})",
                INTERPRETER_OPTION_DIRECTIVES.join(", ")
            )
        );
    }

    fn block(selectors: &str, lines: &[(&str, &str)]) -> InterpreterOptions {
        let words: Vec<String> = selectors.split_whitespace().map(str::to_owned).collect();
        let mut b = InterpreterOptions::parse_selectors(&words).unwrap();
        for (directive, value) in lines {
            b.apply(directive, &[(*value).to_owned()]).unwrap();
        }
        b
    }

    #[test]
    fn the_most_specific_block_wins_and_paths_add_up() {
        let blocks = vec![
            block("application-group=app1", &[("WSGIRestrictStdout", "On")]),
            block(
                "process-group=d1 application-group=app1",
                &[("WSGIRestrictStdout", "Off"), ("WSGIPythonPath", "/both")],
            ),
            block(
                "",
                &[
                    ("WSGIPythonPath", "/all:/more"),
                    ("WSGISwitchInterval", "0.01"),
                ],
            ),
            block("process-group=d1", &[("WSGIPythonPath", "/d1")]),
            block("application-group=app1", &[("WSGIRestrictStdin", "On")]),
        ];
        let r = resolve_interpreter_options(&blocks, "d1", "app1");
        assert_eq!(r.restrict_stdout, Some(false), "two selectors beat one");
        assert_eq!(r.restrict_stdin, Some(true));
        assert_eq!(
            r.python_path_layers,
            [
                vec!["/all".to_owned(), "/more".to_owned()],
                vec!["/d1".to_owned()],
                vec!["/both".to_owned()]
            ]
        );
        assert_eq!(r.switch_interval, Some((Duration::from_millis(10), false)));
        let other = resolve_interpreter_options(&blocks, "", "app2");
        assert_eq!(other.restrict_stdout, None);
        assert_eq!(other.python_path_layers.len(), 1);
    }

    #[test]
    fn an_own_gil_is_given_and_withheld_per_interpreter() {
        let blocks = vec![
            block("process-group=d1", &[("WSGIPerInterpreterGIL", "On")]),
            block(
                "process-group=d1 application-group=shared",
                &[("WSGIPerInterpreterGIL", "Off")],
            ),
        ];
        let gil = |p, a| resolve_interpreter_options(&blocks, p, a).per_interpreter_gil;
        assert_eq!(gil("d1", "app1"), Some(true));
        assert_eq!(gil("d1", "shared"), Some(false));
        assert_eq!(gil("d2", "app1"), None, "the top-level setting applies");
    }

    #[test]
    fn global_selects_embedded_mode_and_the_main_interpreter() {
        let blocks = vec![block(
            "process-group=%{GLOBAL} application-group=%{GLOBAL}",
            &[("WSGIRestrictSignal", "Off")],
        )];
        assert_eq!(
            resolve_interpreter_options(&blocks, "", "").restrict_signal,
            Some(false)
        );
        assert_eq!(
            resolve_interpreter_options(&blocks, "d1", "").restrict_signal,
            None
        );
    }

    #[test]
    fn other_directives_and_selectors_are_refused() {
        let mut b = InterpreterOptions::default();
        let err = b
            .apply("WSGIScriptAlias", &["/".to_owned(), "/a.wsgi".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not allowed inside"), "{err}");
        assert!(b.apply("WSGISwitchInterval", &["0".to_owned()]).is_err());
        assert!(InterpreterOptions::parse_selectors(&["callable-object=x".to_owned()]).is_err());
    }
}
