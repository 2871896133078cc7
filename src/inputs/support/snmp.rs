//! The header/value line pairs of /proc/net/snmp and /proc/net/netstat:
//!
//! ```text
//! Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens …
//! Tcp: 1 200 120000 -1 1103 …
//! ```

use std::str::{Lines, SplitAsciiWhitespace};

/// Checks the whole text, then iterates its `(section, field, value)` triples in file order
/// without allocating.
///
/// Garbage anywhere (a header line without its value line, a value line of another section,
/// field and value counts that differ, a value that is not an integer) is an `Err` and
/// nothing of the text is to be reported. Values are signed: `Tcp: MaxConn` is `-1`.
pub fn parse(text: &str) -> Result<Fields<'_>, String> {
    for pair in pairs(text) {
        let (section, names, values) = pair?;
        let (mut n, mut v) = (
            names.split_ascii_whitespace(),
            values.split_ascii_whitespace(),
        );
        loop {
            match (n.next(), v.next()) {
                (None, None) => break,
                (Some(name), Some(value)) => {
                    if number(value).is_none() {
                        return Err(format!("{section}: {name}: `{value}` is not a number"));
                    }
                }
                _ => {
                    return Err(format!(
                        "{section}: {} names but {} values",
                        names.split_ascii_whitespace().count(),
                        values.split_ascii_whitespace().count()
                    ))
                }
            }
        }
    }
    Ok(Fields {
        pairs: pairs(text),
        section: "",
        names: "".split_ascii_whitespace(),
        values: "".split_ascii_whitespace(),
    })
}

/// The `(section, field, value)` triples of a text checked by [`parse`].
pub struct Fields<'a> {
    pairs: Pairs<'a>,
    section: &'a str,
    names: SplitAsciiWhitespace<'a>,
    values: SplitAsciiWhitespace<'a>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str, f64);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match (self.names.next(), self.values.next()) {
                (Some(name), Some(value)) => {
                    if let Some(v) = number(value) {
                        return Some((self.section, name, v));
                    }
                }
                _ => {
                    // `parse` checked every pair, so an error here cannot happen; stop if it does.
                    let (section, names, values) = self.pairs.next()?.ok()?;
                    self.section = section;
                    self.names = names.split_ascii_whitespace();
                    self.values = values.split_ascii_whitespace();
                }
            }
        }
    }
}

fn pairs(text: &str) -> Pairs<'_> {
    Pairs {
        lines: text.lines(),
    }
}

/// `(section, names, values)` per pair of lines.
struct Pairs<'a> {
    lines: Lines<'a>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a str, &'a str, &'a str), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.lines.by_ref().find(|l| !l.trim().is_empty())?;
        let Some((section, names)) = header.split_once(':') else {
            return Some(Err(format!("line without a `Section:` prefix: `{header}`")));
        };
        let section = section.trim();
        let Some((vsection, values)) = self.lines.next().and_then(|l| l.split_once(':')) else {
            return Some(Err(format!("{section}: the line of values is missing")));
        };
        if vsection.trim() != section {
            return Some(Err(format!(
                "{section}: followed by `{}:` instead of its values",
                vsection.trim()
            )));
        }
        Some(Ok((section, names, values)))
    }
}

fn number(s: &str) -> Option<f64> {
    match s.parse::<i64>() {
        Ok(v) => Some(v as f64),
        Err(_) => s.parse::<u64>().ok().map(|v| v as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_every_field_of_every_section_in_order() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: MaxConn ActiveOpens\nTcp: -1 18446744073709551615\n";
        let got: Vec<_> = parse(text).unwrap().collect();
        assert_eq!(
            got,
            [
                ("Ip", "Forwarding", 2.0),
                ("Ip", "DefaultTTL", 64.0),
                ("Tcp", "MaxConn", -1.0),
                ("Tcp", "ActiveOpens", 18446744073709551615.0),
            ]
        );
    }

    #[test]
    fn empty_sections_and_blank_lines_are_fine() {
        let got: Vec<_> = parse("\nX:\nX:\nY: a\nY: 1\n\n").unwrap().collect();
        assert_eq!(got, [("Y", "a", 1.0)]);
        assert_eq!(parse("").unwrap().count(), 0);
    }

    #[test]
    fn garbage_is_rejected_whole() {
        for (text, want) in [
            ("Ip: a b\n", "Ip: the line of values is missing"),
            ("Ip: a b\nIp: 1\n", "Ip: 2 names but 1 values"),
            ("Ip: a\nIp: 1 2\n", "Ip: 1 names but 2 values"),
            (
                "Ip: a\nTcp: 1\n",
                "Ip: followed by `Tcp:` instead of its values",
            ),
            ("Ip: a\nIp: x\n", "Ip: a: `x` is not a number"),
            (
                "Ip: a\nIp: 1\nTcp: b\n",
                "Tcp: the line of values is missing",
            ),
            ("garbage\n", "line without a `Section:` prefix: `garbage`"),
        ] {
            assert_eq!(parse(text).err().as_deref(), Some(want), "{text:?}");
        }
    }
}
