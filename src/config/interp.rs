//! `${VAR}` environment interpolation over the raw config text.
//!
//! Done before YAML parsing so it works in any value, keeping line numbers intact (a
//! value never spans lines after substitution). `$$` is a literal `$`;
//! `${VAR:-default}` uses the default when VAR is unset or empty.

/// Where and why an interpolation failed (1-based line and column).
#[derive(Debug, PartialEq)]
pub struct InterpError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        interpolate_line(line, &lookup, &mut out).map_err(|(column, message)| InterpError {
            line: i + 1,
            column,
            message,
        })?;
    }
    Ok(out)
}

fn interpolate_line(
    line: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), (usize, String)> {
    // A comment is left as it is, so an example `${VAR}` there does not have to be set.
    let code_end = comment_start(line).unwrap_or(line.len());
    let (code, comment) = line.split_at(code_end);
    let mut rest = code;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let column = code.len() - rest.len() + pos + 1;
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                (
                    column,
                    "unclosed `${`: write `}` after the variable name".to_string(),
                )
            })?;
            out.push_str(&expand(&body[..end], lookup).map_err(|m| (column, m))?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out.push_str(comment);
    Ok(())
}

fn expand(expr: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match expr.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (expr, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!("`${{{expr}}}` is not a valid variable reference"));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
        )),
    }
}

/// Byte offset of a YAML comment (`#` at line start or after whitespace, outside quotes).
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev_space => return Some(i),
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("redis.lan".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_anywhere() {
        let r = interpolate("host: ${HOST}\nurl: redis://${HOST}:6379\n", env).unwrap();
        assert_eq!(r, "host: redis.lan\nurl: redis://redis.lan:6379\n");
    }

    #[test]
    fn defaults_and_escapes() {
        assert_eq!(interpolate("a: ${NOPE:-x}", env).unwrap(), "a: x");
        assert_eq!(interpolate("a: ${EMPTY:-y}", env).unwrap(), "a: y");
        assert_eq!(
            interpolate("a: $$HOME and $5", env).unwrap(),
            "a: $HOME and $5"
        );
    }

    #[test]
    fn comments_are_left_alone() {
        assert_eq!(
            interpolate("a: 1 # set ${UNSET}\n", env).unwrap(),
            "a: 1 # set ${UNSET}\n"
        );
        assert_eq!(
            interpolate("a: \"#${HOST}\"", env).unwrap(),
            "a: \"#redis.lan\""
        );
    }

    #[test]
    fn unset_variable_names_line_and_column() {
        let e = interpolate("a: 1\nb: x${MISSING}\n", env).unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
        assert!(e.message.contains("`MISSING` is not set"), "{}", e.message);
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(interpolate("a: ${OPEN", env).is_err());
        assert!(interpolate("a: ${1X}", env).is_err());
    }
}
