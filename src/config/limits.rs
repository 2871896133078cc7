//! Limits on the config text itself, checked before the YAML parser sees it: the parser
//! takes time that grows faster than the text on nested flow collections (`[[[…]]]`: 20 000
//! levels 0.4 s, 100 000 levels 33 s), and a reload parses on the agent's time.

/// The largest config file read: real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The most `[` / `{` collections open inside one another: real configs use two or three.
pub const MAX_FLOW_DEPTH: usize = 100;

/// The 1-based line and column of the first `[` or `{` that opens collection number
/// `MAX_FLOW_DEPTH + 1` inside one another, if any.
///
/// A light scan, not a YAML parser: it skips comments and quoted scalars, and counts a
/// bracket only where a flow collection can start (at the start of a value, or inside
/// another flow collection), so `a[b` in a plain scalar is not one. What it cannot tell
/// apart (brackets at the start of lines inside a `|` block) can only count more, and the
/// limit is far above any real config.
pub fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (line_no, line) in text.lines().enumerate() {
        // Whether the next character starts a value (a quoted scalar or a collection).
        let mut value_start = true;
        let mut after_space = true;
        for (col, c) in line.chars().enumerate() {
            if let Some(q) = quote {
                if escaped {
                    escaped = false;
                } else if q == '"' && c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            value_start = match c {
                '#' if after_space => break,
                '\'' | '"' if value_start => {
                    quote = Some(c);
                    false
                }
                '[' | '{' if value_start || depth > 0 => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some((line_no + 1, col + 1));
                    }
                    true
                }
                ']' | '}' if depth > 0 => {
                    depth -= 1;
                    false
                }
                ',' if depth > 0 => true,
                ':' => true,
                '-' | '?' | ' ' | '\t' => value_start,
                _ => false,
            };
            after_space = c == ' ' || c == '\t';
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("inputs: {}{}\n", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn deep_flow_nesting_is_found_at_its_bracket() {
        assert_eq!(too_deep(&nested(MAX_FLOW_DEPTH)), None);
        assert_eq!(
            too_deep(&nested(MAX_FLOW_DEPTH + 1)),
            Some((1, 9 + MAX_FLOW_DEPTH))
        );
        let maps = format!("a:\n  b: {}\n", "{x: ".repeat(200));
        assert_eq!(too_deep(&maps), Some((2, 6 + 4 * MAX_FLOW_DEPTH)));
        assert!(too_deep(&nested(100_000)).is_some());
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        let many = "[".repeat(500);
        let text = format!(
            "a: x{many}\nb: '{many}'\nc: \"{many}\\\"{many}\"\n# {many}\nd: [1, 2] # {many}\ne: [\"[\", '{{']\n"
        );
        assert_eq!(too_deep(&text), None);
    }
}
