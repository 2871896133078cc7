//! The error of building an input or output from its parsed options, and where in the
//! config file it is reported.

use super::{locate, ConfigError};
use std::fmt;
use std::path::Path;

/// Why a plugin could not be built from its options: a bad pattern, two options that do not
/// go together… found after parsing, so it carries the option to point at by name rather
/// than by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// The option at fault, as written in the plugin's options; `None` for the entry as a
    /// whole (then reported at the plugin's name).
    pub option: Option<&'static str>,
    /// Why, without the option's name.
    pub message: String,
}

impl BuildError {
    /// An error in `option`.
    pub fn at(option: &'static str, message: impl Into<String>) -> Self {
        BuildError {
            option: Some(option),
            message: message.into(),
        }
    }

    /// An error of the entry as a whole: no single option is at fault.
    pub fn entry(message: impl Into<String>) -> Self {
        BuildError {
            option: None,
            message: message.into(),
        }
    }

    /// The error as `check` and `run` report it: at the option's line and column in
    /// `source` (the text of `path`), named by its key path
    /// (`inputs[2].linux_net.include_patterns`), for plugin `index` of `section`.
    pub fn in_config(
        self,
        path: &Path,
        source: &str,
        (section, index, name): (&str, usize, &str),
    ) -> ConfigError {
        let at = locate::locate(source, section, index, self.option);
        let message = match self.option {
            Some(option) => format!("{section}[{index}].{name}.{option}: {}", self.message),
            None => format!("{section}[{index}].{name}: {}", self.message),
        };
        ConfigError {
            file: path.into(),
            line: at.map(|(line, _)| line),
            column: at.map(|(_, column)| column),
            message,
        }
    }
}

/// A plain message is an error of the entry as a whole: plugins whose errors name no option
/// return `String`s and need not know this type.
impl From<String> for BuildError {
    fn from(message: String) -> Self {
        BuildError::entry(message)
    }
}

impl From<&str> for BuildError {
    fn from(message: &str) -> Self {
        BuildError::entry(message)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.option {
            Some(option) => write!(f, "{option}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "inputs:\n  - linux_mem\n  - linux_cpu\n  - linux_net:\n      include_patterns: [\"(\"]\n";

    #[test]
    fn an_option_error_points_at_the_option_and_names_its_key_path() {
        let err = BuildError::at("include_patterns", "invalid pattern `(`").in_config(
            Path::new("c.yaml"),
            TEXT,
            ("inputs", 2, "linux_net"),
        );
        assert_eq!(
            err.to_string(),
            "c.yaml:5:7: inputs[2].linux_net.include_patterns: invalid pattern `(`"
        );
    }

    #[test]
    fn an_entry_error_points_at_the_plugin() {
        let err = BuildError::entry("bad").in_config(
            Path::new("c.yaml"),
            TEXT,
            ("inputs", 2, "linux_net"),
        );
        assert_eq!(err.to_string(), "c.yaml:4:5: inputs[2].linux_net: bad");
    }

    /// The old contract guessed the option from a message's head: a message that starts
    /// with a word and a colon is no longer taken for an option.
    #[test]
    fn a_plain_message_is_never_read_as_an_option() {
        let err = BuildError::from("nginx: something".to_string());
        assert_eq!(err.option, None);
        let err = err.in_config(Path::new("c.yaml"), TEXT, ("inputs", 2, "linux_net"));
        assert_eq!(
            err.to_string(),
            "c.yaml:4:5: inputs[2].linux_net: nginx: something"
        );
    }

    #[test]
    fn an_option_not_written_points_at_the_plugin() {
        let err = BuildError::at("timeout", "must be more than 0").in_config(
            Path::new("c.yaml"),
            TEXT,
            ("inputs", 1, "linux_cpu"),
        );
        assert_eq!(
            err.to_string(),
            "c.yaml:3:5: inputs[1].linux_cpu.timeout: must be more than 0"
        );
    }
}
