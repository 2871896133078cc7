//! The text of Redis' `INFO` reply: `# Section` headers and `field:value` lines.

/// One `field:value` line of `INFO`, with the section it is in (`Keyspace` for `# Keyspace`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub section: &'a str,
    pub field: &'a str,
    pub value: &'a str,
}

/// The lines of an `INFO` reply with their section. Blank lines and headers are consumed;
/// a line without `:` is skipped (none exists in any Redis version, and a value never holds
/// a line break).
pub fn fields(text: &str) -> impl Iterator<Item = Field<'_>> {
    let mut section = "";
    text.lines().filter_map(move |raw| {
        let line = raw.trim_end_matches('\r');
        if let Some(header) = line.strip_prefix('#') {
            section = header.trim();
            return None;
        }
        let (field, value) = line.split_once(':')?;
        if field.is_empty() {
            return None;
        }
        Some(Field {
            section,
            field,
            value,
        })
    })
}

/// A field's value as a number: integers, decimals, and the `ok`/`err` of the
/// `*_status` fields as 1/0.
pub fn number(field: &str, value: &str) -> Option<f64> {
    if let Ok(v) = value.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    if field.ends_with("_status") {
        return match value {
            "ok" => Some(1.0),
            "err" | "fail" | "failed" => Some(0.0),
            _ => None,
        };
    }
    None
}

/// The `key=value` pairs of a keyspace line (`keys=12,expires=3,avg_ttl=0`) that are numbers.
/// `None` when a pair is not `key=number`.
pub fn keyspace(value: &str) -> Option<heapless::Vec<(&str, f64), 8>> {
    let mut out = heapless::Vec::new();
    for pair in value.split(',') {
        let (k, v) = pair.split_once('=')?;
        let v: f64 = v.parse().ok()?;
        if k.is_empty() || !v.is_finite() {
            return None;
        }
        // More pairs than any Redis version writes: the rest are left out.
        let _ = out.push((k, v));
    }
    Some(out)
}
