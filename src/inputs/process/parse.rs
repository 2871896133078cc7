//! The /proc/<pid> files the `process` input reads, parsed from bytes without allocating.

/// What `process` takes from one /proc/<pid>/stat line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidStat<'a> {
    /// The command name (the kernel's `comm`, at most 15 bytes, not necessarily UTF-8).
    pub comm: &'a [u8],
    /// User and system CPU time, in clock ticks (`USER_HZ`).
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    /// When the process started, in clock ticks after boot.
    pub start_ticks: u64,
    /// Virtual size in bytes.
    pub vsize: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses a /proc/<pid>/stat line. The command name sits between the first `(` and the
/// **last** `)`, since it may itself contain both; the numbered fields are counted from there
/// (field 3, the state, is the first after it).
pub fn parse_stat(text: &[u8]) -> Result<PidStat<'_>, &'static str> {
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no `(` before the command name")?;
    let close = text
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&c| c > open)
        .ok_or("no `)` after the command name")?;
    // Fields 3 onwards; index i holds field i + 3.
    let mut fields = [0u64; 22];
    let mut n = 0;
    for (i, tok) in text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .enumerate()
        .take(fields.len())
    {
        n = i + 1;
        if i == 0 {
            // The state letter.
            if !matches!(tok, [s] if s.is_ascii_alphabetic()) {
                return Err("bad state field");
            }
            continue;
        }
        fields[i] = number(tok).ok_or("a field that is not a number")?;
    }
    if n < fields.len() {
        return Err("fewer fields than the kernel writes");
    }
    let field = |f: usize| fields[f - 3];
    Ok(PidStat {
        comm: &text[open + 1..close],
        utime: field(14),
        stime: field(15),
        threads: field(20),
        start_ticks: field(22),
        vsize: field(23),
        rss_pages: field(24),
    })
}

/// A decimal number; a negative one (the kernel prints some fields signed) is rejected only
/// where it matters, which is nowhere `process` reads: they read as 0.
fn number(tok: &[u8]) -> Option<u64> {
    if let Some(rest) = tok.strip_prefix(b"-") {
        return digits(rest).map(|_| 0);
    }
    digits(tok)
}

fn digits(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 20 {
        return None;
    }
    tok.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The value of the `key:` line of a `key: value [kB]` file (status, smaps_rollup, io).
/// `None` when there is no such line or its value is not a number.
pub fn keyed(text: &[u8], key: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(b":")?;
        let value = rest
            .split(|b| b.is_ascii_whitespace())
            .find(|s| !s.is_empty())?;
        digits(value)
    })
}

/// PSS in bytes from /proc/<pid>/smaps_rollup (`Pss:` in kB). A kernel thread has no
/// memory map and an empty file: 0.
pub fn pss_bytes(smaps_rollup: &[u8]) -> Result<u64, &'static str> {
    if smaps_rollup.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    keyed(smaps_rollup, b"Pss")
        .map(|kb| kb * 1024)
        .ok_or("no `Pss:` line")
}

/// `(read_bytes, write_bytes)` from /proc/<pid>/io: what the process made the storage layer
/// fetch and send (not `rchar`/`wchar`, which count page-cache hits and pipes too).
pub fn io_bytes(io: &[u8]) -> Result<(u64, u64), &'static str> {
    match (keyed(io, b"read_bytes"), keyed(io, b"write_bytes")) {
        (Some(r), Some(w)) => Ok((r, w)),
        _ => Err("no `read_bytes:`/`write_bytes:` lines"),
    }
}

/// `btime` (boot time, seconds since the epoch) from /proc/stat.
pub fn boot_time(stat: &[u8]) -> Option<u64> {
    stat.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(b"btime ")?;
        digits(rest.trim_ascii())
    })
}

/// Pids listed one per line (cgroup.procs), or the one pid of a pid file, into `out`.
/// Blank lines are skipped; anything else that is not a pid is an error.
pub fn pid_lines(text: &[u8], out: &mut Vec<u32>) -> Result<(), &'static str> {
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let pid = digits(line)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0)
            .ok_or("a line that is not a process id")?;
        out.push(pid);
    }
    Ok(())
}

/// The command line from /proc/<pid>/cmdline (arguments separated by NUL bytes) with spaces
/// between the arguments, in place; the trailing NUL is dropped.
pub fn cmdline_text(raw: &mut [u8]) -> &[u8] {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for b in &mut raw[..end] {
        if *b == 0 {
            *b = b' ';
        }
    }
    &raw[..end]
}

/// A user name or uid from an /etc/passwd text: the uid.
pub fn uid_in_passwd(passwd: &str, user: &str) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn line(comm: &str) -> String {
        format!("4242 ({comm}) S 1 4242 4242 0 -1 4194560 2000 0 0 0 731 129 0 0 20 0 7 0 88123 123456789 2500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n")
    }

    #[test]
    fn stat_fields_after_the_last_parenthesis() {
        let l = line("a) S 9 (b");
        let s = parse_stat(l.as_bytes()).unwrap();
        assert_eq!(s.comm, b"a) S 9 (b");
        assert_eq!((s.utime, s.stime), (731, 129));
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_ticks, 88123);
        assert_eq!(s.vsize, 123456789);
        assert_eq!(s.rss_pages, 2500);
    }

    #[test]
    fn garbage_stat_lines_are_errors() {
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b"1 (x S 1 2").is_err());
        assert!(parse_stat(b"1 x) S 1 2").is_err());
        assert!(parse_stat(b"1 (x) S 1 2 3\n").is_err(), "truncated");
        let l = line("x").replace(" 731 ", " 7x1 ");
        assert!(parse_stat(l.as_bytes()).is_err());
        let l = line("x").replace(" S ", " ? ");
        assert!(parse_stat(l.as_bytes()).is_err());
        let l = line("x").replace(" 731 ", " 99999999999999999999999 ");
        assert!(parse_stat(l.as_bytes()).is_err(), "overflow");
    }

    #[test]
    fn keyed_files() {
        let rollup = b"55d0a0a0a000-7ffd5b1f3000 ---p 00000000 00:00 0 [rollup]\nRss:  4000 kB\nPss:  1234 kB\nPss_Anon: 800 kB\n";
        assert_eq!(pss_bytes(rollup), Ok(1234 * 1024));
        assert_eq!(pss_bytes(b""), Ok(0), "a kernel thread");
        assert!(pss_bytes(b"Rss: 1 kB\n").is_err());
        let io = b"rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(io_bytes(io), Ok((4096, 8192)));
        assert!(io_bytes(b"rchar: 1\n").is_err());
        assert_eq!(boot_time(b"cpu 1 2 3\nbtime 1765000000\nprocesses 5\n"), Some(1765000000));
        assert_eq!(boot_time(b"cpu 1 2 3\n"), None);
    }

    #[test]
    fn pid_lists() {
        let mut v = Vec::new();
        pid_lines(b"12\n7\n\n", &mut v).unwrap();
        assert_eq!(v, [12, 7]);
        assert!(pid_lines(b"12\nabc\n", &mut v).is_err());
        assert!(pid_lines(b"0\n", &mut v).is_err());
        assert!(pid_lines(b"99999999999\n", &mut v).is_err());
    }

    #[test]
    fn command_lines_and_users() {
        let mut raw = *b"nginx: worker\0-g\0daemon off;\0";
        assert_eq!(cmdline_text(&mut raw), b"nginx: worker -g daemon off;");
        assert_eq!(cmdline_text(&mut []), b"");
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
        assert_eq!(uid_in_passwd(passwd, "www-data"), Some(33));
        assert_eq!(uid_in_passwd(passwd, "www"), None);
    }
}
