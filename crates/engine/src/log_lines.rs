//! Process-wide `tracing` events as log lines: the subscriber a host installs to send them
//! to its own error log, and how a message is cut into lines that log takes.

use std::ffi::CString;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// How severe an event is: its `tracing` level, or critical when it carries
/// `apache_crit = true` (a level `tracing` lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Level(Level),
}

/// Hands every event up to `max` to `emit`, as one message with its fields appended
/// (` name=value`). Spans are not kept.
pub struct LineSubscriber<F> {
    max: LevelFilter,
    emit: F,
}

impl<F: Fn(Severity, &str) + Send + Sync + 'static> LineSubscriber<F> {
    pub fn new(max: LevelFilter, emit: F) -> Self {
        LineSubscriber { max, emit }
    }
}

/// The event's message; `critical` when it carries `apache_crit = true`.
#[derive(Default)]
struct MessageVisitor(String, bool);

impl Visit for MessageVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "apache_crit" {
            self.1 = value;
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<F: Fn(Severity, &str) + Send + Sync + 'static> Subscriber for LineSubscriber<F> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.max >= *metadata.level()
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let severity = if visitor.1 {
            Severity::Critical
        } else {
            Severity::Level(*event.metadata().level())
        };
        (self.emit)(severity, &visitor.0);
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

/// Calls `emit` once per line of `message`, each as a C string (NULs shown as `\0`).
pub fn each_line(message: &str, mut emit: impl FnMut(&CString)) {
    for line in message.lines() {
        emit(&CString::new(line.replace('\0', "\\0")).expect("BUG: NULs were replaced"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn collect(max: LevelFilter, events: impl FnOnce()) -> Vec<(Severity, String)> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let subscriber = LineSubscriber::new(max, move |severity, text: &str| {
            sink.lock().unwrap().push((severity, text.to_owned()));
        });
        tracing::subscriber::with_default(subscriber, events);
        std::mem::take(&mut *seen.lock().unwrap())
    }

    #[test]
    fn events_up_to_the_level_are_emitted_with_their_level() {
        let seen = collect(LevelFilter::INFO, || {
            tracing::error!("WSGI0001: broken");
            tracing::info!("WSGI1120: started daemon process {} of group '{}'", 7, "g");
            tracing::debug!("not shown");
        });
        assert_eq!(
            seen,
            [
                (Severity::Level(Level::ERROR), "WSGI0001: broken".to_owned()),
                (
                    Severity::Level(Level::INFO),
                    "WSGI1120: started daemon process 7 of group 'g'".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn apache_crit_makes_an_event_critical_and_fields_are_appended() {
        let seen = collect(LevelFilter::TRACE, || {
            tracing::error!(apache_crit = true, "out of memory");
            tracing::warn!(apache_crit = false, count = 3, name = "x", "with fields");
        });
        assert_eq!(
            seen,
            [
                (Severity::Critical, "out of memory".to_owned()),
                (
                    Severity::Level(Level::WARN),
                    "with fields count=3 name=x".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn messages_are_cut_into_lines_without_nuls() {
        let mut lines = Vec::new();
        each_line("Traceback:\r\n  line 1\na\0b\n", |l| lines.push(l.clone()));
        assert_eq!(
            lines,
            [c"Traceback:", c"  line 1", c"a\\0b"].map(CString::from)
        );
        let mut none = 0;
        each_line("", |_| none += 1);
        assert_eq!(none, 0);
    }
}
