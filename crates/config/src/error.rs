//! The one error type of configuration parsing; its Display text is what Apache prints.

/// A directive argument that cannot be accepted; shown by Apache with file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{directive}: expected On or Off, got '{value}'")]
    NotOnOff {
        directive: &'static str,
        value: String,
    },
    #[error("{directive}: unknown option '{option}'")]
    UnknownOption {
        directive: &'static str,
        option: String,
    },
    #[error("{directive}: option '{option}' needs a value (name=value)")]
    OptionWithoutValue {
        directive: &'static str,
        option: String,
    },
    #[error("{directive}: option '{option}' given more than once")]
    DuplicateOption {
        directive: &'static str,
        option: String,
    },
    #[error("{directive}: invalid value '{value}': {reason}")]
    InvalidValue {
        directive: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{directive}: {reason}")]
    Invalid {
        directive: &'static str,
        reason: String,
    },
}
