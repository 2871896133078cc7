//! Files of `key value` lines: /proc/meminfo (`SwapTotal:  2097148 kB`), /proc/vmstat
//! (`pswpin 1234`) and the single-number lines of /proc/stat (`ctxt 402118532`).

/// Finds the values of `keys` in `text` and stores each in the slot of `out` with the same
/// index; a key that does not occur leaves its slot `None` (the caller decides whether that
/// is an error).
///
/// A line is `key[:] value [kB | more numbers…]`: a trailing `:` on the key is ignored, a value
/// followed by `kB` is converted to bytes, further numbers (as in /proc/stat's `intr`) are
/// ignored. A wanted key whose value is not a whole number makes the whole text garbage:
/// `Err` names the key and nothing is to be reported from it. Lines with other keys are not
/// looked at beyond their first word. Allocates only on the error path.
pub fn keyed_values(text: &str, keys: &[&str], out: &mut [Option<u64>]) -> Result<(), String> {
    debug_assert_eq!(keys.len(), out.len());
    out.fill(None);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(word) = f.next() else {
            continue;
        };
        let key = word.strip_suffix(':').unwrap_or(word);
        let Some(i) = keys.iter().position(|k| *k == key) else {
            continue;
        };
        let bad = || format!("bad value for {key}: `{}`", line[word.len()..].trim());
        let n: u64 = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let value = match f.next() {
            None => n,
            Some("kB") => n.checked_mul(1024).ok_or_else(bad)?,
            Some(more) if more.bytes().all(|b| b.is_ascii_digit()) => n,
            Some(_) => return Err(bad()),
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_vmstat_and_stat_styles() {
        let mut out = [None; 4];
        keyed_values(
            "SwapTotal:  2 kB\npswpin 7\nintr 100 1 2 3\nHugePages_Total:       0\n",
            &["SwapTotal", "pswpin", "intr", "missing"],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [Some(2048), Some(7), Some(100), None]);
    }

    #[test]
    fn garbage_in_a_wanted_key_is_an_error_and_other_keys_are_not_checked() {
        let mut out = [None; 1];
        let e = keyed_values("a: x kB\n", &["a"], &mut out).unwrap_err();
        assert_eq!(e, "bad value for a: `x kB`");
        assert!(keyed_values("a:\n", &["a"], &mut out).is_err());
        assert!(keyed_values("a: 1 MB\n", &["a"], &mut out).is_err());
        assert!(keyed_values("a: -1\n", &["a"], &mut out).is_err());
        keyed_values("b: junk\na 5\n", &["a"], &mut out).unwrap();
        assert_eq!(out, [Some(5)]);
    }

    #[test]
    fn slots_are_reset_on_every_call() {
        let mut out = [Some(9)];
        keyed_values("", &["a"], &mut out).unwrap();
        assert_eq!(out, [None]);
    }
}
