//! Include/exclude filtering of names (interfaces, devices, mount points).

use crate::config::BuildError;
use regex_lite::Regex;

/// Decides which names an input reports.
///
/// Order of precedence, as the Python rtcollector's `linux_net`: an explicit include (by name or by
/// pattern) wins over any exclusion; then an explicit exclude. Include names only rescue
/// names from exclusion; include patterns, when given, also restrict: a name matching
/// none of them is dropped.
#[derive(Debug, Default)]
pub struct NameFilter {
    include_names: Vec<String>,
    exclude_names: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl NameFilter {
    /// Builds a filter; a bad pattern is reported with the option it came from.
    pub fn new(
        include_names: &[String],
        exclude_names: &[String],
        include_patterns: &[String],
        exclude_patterns: &[String],
    ) -> Result<Self, BuildError> {
        Ok(NameFilter {
            include_names: include_names.to_vec(),
            exclude_names: exclude_names.to_vec(),
            include: compile("include_patterns", include_patterns)?,
            exclude: compile("exclude_patterns", exclude_patterns)?,
        })
    }

    pub fn allows(&self, name: &str) -> bool {
        if self.include_names.iter().any(|n| n == name)
            || self.include.iter().any(|r| r.is_match(name))
        {
            return true;
        }
        if self.exclude_names.iter().any(|n| n == name)
            || self.exclude.iter().any(|r| r.is_match(name))
        {
            return false;
        }
        self.include.is_empty()
    }
}

fn compile(option: &'static str, patterns: &[String]) -> Result<Vec<Regex>, BuildError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| BuildError::at(option, format!("invalid pattern `{p}`: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn empty_filter_allows_everything() {
        assert!(NameFilter::default().allows("eth0"));
    }

    #[test]
    fn include_overrides_exclude() {
        let f = NameFilter::new(&s(&["veth9"]), &[], &[], &s(&["^veth", "docker"])).unwrap();
        assert!(f.allows("veth9"));
        assert!(!f.allows("veth1"));
        assert!(!f.allows("docker0"));
        assert!(f.allows("eth0"));
    }

    #[test]
    fn include_patterns_restrict() {
        let f = NameFilter::new(&[], &s(&["eth1"]), &s(&["^eth"]), &[]).unwrap();
        assert!(f.allows("eth0"));
        assert!(
            f.allows("eth1"),
            "an include pattern wins over an excluded name"
        );
        assert!(!f.allows("wlan0"));
    }

    #[test]
    fn bad_pattern_names_the_option() {
        let e = NameFilter::new(&[], &[], &[], &s(&["("]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("exclude_patterns: invalid pattern `(`"),
            "{e}"
        );
    }
}
