//! Key templates (`key_format`) and metric-name patterns.

use crate::core::metric::Series;

/// A compiled `key_format`. Placeholders:
///
/// - `{name}`: the metric name (`net_rx_bytes`)
/// - `{host}`: the `host` label
/// - `{:values}`: `:` and the value of each other label, in label-name order (`:eth0`);
///   any one character of `: _ . - / | ,` may stand before `values`: `{_values}` gives `_eth0`
/// - `{LABEL}`: the value of label LABEL (empty when the series has none)
/// - `{{` and `}}`: literal braces
///
/// The default `{name}:{host}{:values}` gives `net_rx_bytes:pi4:eth0`; the Python
/// rtcollector's keys (`net_rx_bytes_eth0`) are `{name}{_values}`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFormat {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Name,
    Host,
    Values(char),
    Label(String),
}

const VALUE_SEPARATORS: &[char] = &[':', '_', '.', '-', '/', '|', ','];

impl KeyFormat {
    pub fn parse(template: &str) -> Result<KeyFormat, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(format!(
                                    "key_format `{template}`: `{{` without a closing `}}`"
                                ))
                            }
                        }
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(match name.as_str() {
                        "" => return Err(format!("key_format `{template}`: empty `{{}}`")),
                        "name" => Part::Name,
                        "host" => Part::Host,
                        n if n.len() == 7
                            && n.ends_with("values")
                            && n.starts_with(VALUE_SEPARATORS) =>
                        {
                            Part::Values(n.chars().next().unwrap_or(':'))
                        }
                        "values" => {
                            return Err(format!(
                                "key_format `{template}`: write `{{:values}}` or `{{_values}}`: the character before `values` joins the label values"
                            ))
                        }
                        n => Part::Label(n.to_string()),
                    });
                }
                '}' => return Err(format!("key_format `{template}`: `}}` without `{{`")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if !parts.iter().any(|p| matches!(p, Part::Name)) {
            return Err(format!(
                "key_format `{template}`: must contain `{{name}}`, or every metric would share one key"
            ));
        }
        Ok(KeyFormat { parts })
    }

    /// True when every key this template renders has a hash tag (`{…}`, see
    /// `common::redis::cluster::hash_tag`) that is never empty: literal text, `{name}` or
    /// `{host}` inside it, not only labels a series may lack. Such keys keep a series and
    /// its downsampling destinations (the key plus a suffix) on one cluster slot.
    pub fn has_hash_tag(&self) -> bool {
        let mut open = false;
        let mut filled = false;
        for part in &self.parts {
            match part {
                Part::Lit(s) => {
                    let mut rest = s.as_str();
                    if !open {
                        let Some(i) = rest.find('{') else { continue };
                        open = true;
                        rest = &rest[i + 1..];
                    }
                    if let Some(j) = rest.find('}') {
                        return filled || j > 0;
                    }
                    filled |= !rest.is_empty();
                }
                Part::Name | Part::Host => filled |= open,
                Part::Values(_) | Part::Label(_) => {}
            }
        }
        false
    }

    /// Appends the key of `series` to `out`.
    pub fn render(&self, series: &Series, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Name => out.push_str(&series.name),
                Part::Host => out.push_str(series.label("host").unwrap_or("")),
                Part::Values(sep) => {
                    for (k, v) in series.labels.iter() {
                        if &**k != "host" {
                            out.push(*sep);
                            out.push_str(v);
                        }
                    }
                }
                Part::Label(name) => out.push_str(series.label(name).unwrap_or("")),
            }
        }
    }
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::SeriesTable;

    #[test]
    fn hash_tags_that_are_never_empty_are_found() {
        let tagged = |f: &str| KeyFormat::parse(f).unwrap().has_hash_tag();
        assert!(tagged(super::super::config::CLUSTER_KEY_FORMAT));
        assert!(tagged("{{{host}}}:{name}"));
        assert!(tagged("{{site1}}:{name}{:values}"));
        assert!(tagged("{{x{name}}}"));
        assert!(tagged("{name}:{{{rack}-{host}}}"));
        assert!(!tagged(super::super::config::DEFAULT_KEY_FORMAT));
        assert!(!tagged("{name}:{{{rack}}}"), "a label may be missing");
        assert!(!tagged("{name}:{{}}{host}"));
        assert!(!tagged("{name}:{{{host}"), "not closed");
        assert_eq!(
            key(super::super::config::CLUSTER_KEY_FORMAT, "net_rx_bytes", &[("iface", "eth0")]),
            "net_rx_bytes:{pi4}:eth0"
        );
    }

    fn key(fmt: &str, name: &str, labels: &[(&str, &str)]) -> String {
        let mut t = SeriesTable::new("pi4", 10);
        let id = t.intern(name, "", labels).unwrap();
        let mut out = String::new();
        KeyFormat::parse(fmt).unwrap().render(t.get(id), &mut out);
        out
    }

    #[test]
    fn default_key_has_name_host_and_values_in_label_order() {
        assert_eq!(
            key(
                super::super::config::DEFAULT_KEY_FORMAT,
                "net_rx_bytes",
                &[("iface", "eth0")]
            ),
            "net_rx_bytes:pi4:eth0"
        );
        assert_eq!(
            key(
                "{name}:{host}{:values}",
                "disk",
                &[("path", "/"), ("dev", "sda1")]
            ),
            "disk:pi4:sda1:/"
        );
        assert_eq!(key("{name}:{host}{:values}", "mem", &[]), "mem:pi4");
    }

    #[test]
    fn rtcollector_keys_and_other_placeholders() {
        assert_eq!(
            key("{name}{_values}", "net_rx_bytes", &[("iface", "eth0")]),
            "net_rx_bytes_eth0"
        );
        assert_eq!(
            key("m:{{{host}}}:{name}.{iface}.{nope}", "x", &[("iface", "e")]),
            "m:{pi4}:x.e."
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(KeyFormat::parse("{name").is_err());
        assert!(KeyFormat::parse("name}").is_err());
        assert!(KeyFormat::parse("{host}").is_err());
        assert!(KeyFormat::parse("{name}{values}").is_err());
        assert!(KeyFormat::parse("{name}{}").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("cpu_*", "cpu_usage"));
        assert!(glob_match("*", ""));
        assert!(glob_match("n?t_*_rate", "net_rx_bytes_rate"));
        assert!(!glob_match("cpu_*", "mem_used"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b", "aXbY"));
    }
}
