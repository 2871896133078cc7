//! One writer of double-quoted strings, for JSON payloads (stdout, MQTT) and for the YAML
//! that `check` prints (a YAML double-quoted scalar reads JSON's escapes the same way).

use std::fmt::Write as _;

/// Appends `s` as a double-quoted string literal. Every control character is escaped,
/// DEL and the C1 range too: JSON allows that, and YAML requires it.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::write_string;

    fn written(s: &str) -> String {
        let mut out = String::new();
        write_string(s, &mut out);
        out
    }

    #[test]
    fn escapes_what_json_and_yaml_need_and_keeps_the_rest() {
        assert_eq!(written("plain é"), "\"plain é\"");
        assert_eq!(written("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            written("\n\r\t\u{1}\u{7f}\u{85}"),
            "\"\\n\\r\\t\\u0001\\u007f\\u0085\""
        );
    }

    #[test]
    fn json_and_yaml_read_it_back_as_written() {
        let text = "quote \" back \\ nl \n cr \r tab \t bell \u{7} del \u{7f} c1 \u{9b} é";
        let out = written(text);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        assert_eq!(yaml_serde::from_str::<String>(&out).unwrap(), text);
    }
}
