//! The SPL kstat files of /proc/spl/kstat/zfs, parsed without allocating.
//!
//! Every kstat file starts with a header line of seven numbers (`kid type flags ndata
//! data_size crtime snaptime`). A *named* kstat (type 1: arcstats, objset-0x…) then has the
//! column line `name type data` and one `name type value` row per entry, the type being the
//! data type (0 char, 1 int32, 2 uint32, 3 int64, 4 uint64, 5 long, 6 ulong, 7 string). An
//! *I/O* kstat (type 3: a pool's `io`, before OpenZFS 2.1) has a line of column names and a
//! line of values.

/// A named kstat's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Text(&'a str),
}

/// The string data type: its value is the rest of the row.
const KSTAT_DATA_STRING: u8 = 7;

/// Checks the header line of seven numbers and returns the rest of the text.
fn after_header(text: &str) -> Result<&str, &'static str> {
    let (header, rest) = text.split_once('\n').ok_or("no kstat header line")?;
    let mut n = 0;
    for tok in header.split_ascii_whitespace() {
        if !tok.starts_with("0x") && tok.parse::<u64>().is_err() {
            return Err("the header line is not the kstat's numbers");
        }
        n += 1;
    }
    if n != 7 {
        return Err("the header line does not have the 7 kstat numbers");
    }
    Ok(rest)
}

/// Calls `each(name, value)` for every row of a named kstat. A row that does not parse
/// fails the whole file (nothing was emitted for it yet only if the caller buffers; the
/// callers here check the whole file first with [`check_named`]).
pub fn for_each_named<'a>(
    text: &'a str,
    mut each: impl FnMut(&'a str, Value<'a>),
) -> Result<(), &'static str> {
    let rest = after_header(text)?;
    let (columns, rows) = rest.split_once('\n').unwrap_or((rest, ""));
    if columns.split_ascii_whitespace().ne(["name", "type", "data"]) {
        return Err("no `name type data` line after the header");
    }
    for row in rows.lines().filter(|l| !l.trim().is_empty()) {
        let (name, rest) = row.split_once(|c: char| c.is_ascii_whitespace()).ok_or("a row without a type")?;
        let rest = rest.trim_start();
        let (ty, data) = rest.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((rest, ""));
        let ty: u8 = ty.parse().map_err(|_| "a row whose type is not a number")?;
        let data = data.trim();
        let value = if ty == KSTAT_DATA_STRING {
            Value::Text(data)
        } else {
            Value::Number(number(data).ok_or("a row whose value is not a number")?)
        };
        each(name, value);
    }
    Ok(())
}

/// Whether a named kstat parses as a whole, so a damaged file writes nothing half-read.
pub fn check_named(text: &str) -> Result<(), &'static str> {
    for_each_named(text, |_, _| {})
}

fn number(s: &str) -> Option<f64> {
    if let Ok(u) = s.parse::<u64>() {
        return Some(u as f64);
    }
    s.parse::<i64>().ok().map(|i| i as f64)
}

/// A pool's I/O kstat: bytes and operations read and written.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct PoolIo {
    pub nread: u64,
    pub nwritten: u64,
    pub reads: u64,
    pub writes: u64,
}

/// Parses an I/O kstat (`io`): the column names line, then the values line.
pub fn pool_io(text: &str) -> Result<PoolIo, &'static str> {
    let rest = after_header(text)?;
    let mut lines = rest.lines().filter(|l| !l.trim().is_empty());
    let (names, values) = match (lines.next(), lines.next()) {
        (Some(n), Some(v)) => (n, v),
        _ => return Err("no column and value lines"),
    };
    let mut io = PoolIo::default();
    let mut found = 0;
    let mut values = values.split_ascii_whitespace();
    for name in names.split_ascii_whitespace() {
        let v: u64 = values
            .next()
            .ok_or("fewer values than columns")?
            .parse()
            .map_err(|_| "a value that is not a number")?;
        let slot = match name {
            "nread" => &mut io.nread,
            "nwritten" => &mut io.nwritten,
            "reads" => &mut io.reads,
            "writes" => &mut io.writes,
            _ => continue,
        };
        *slot = v;
        found += 1;
    }
    if found != 4 {
        return Err("no nread, nwritten, reads and writes columns");
    }
    Ok(io)
}

/// A pool's state (`state` kstat or `zpool list`'s health) as a number: 0 ONLINE,
/// 1 DEGRADED, 2 FAULTED, 3 OFFLINE, 4 UNAVAIL, 5 REMOVED, 6 SUSPENDED.
pub fn health_code(state: &str) -> Option<f64> {
    let code = match state.trim() {
        "ONLINE" => 0.0,
        "DEGRADED" => 1.0,
        "FAULTED" => 2.0,
        "OFFLINE" => 3.0,
        "UNAVAIL" => 4.0,
        "REMOVED" => 5.0,
        "SUSPENDED" => 6.0,
        _ => return None,
    };
    Some(code)
}

/// One line of `zpool list -Hp -o name,size,alloc,free,frag,cap,health`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZpoolLine<'a> {
    pub name: &'a str,
    pub size: f64,
    pub alloc: f64,
    pub free: f64,
    /// `-` when the pool cannot tell (no spacemap histogram): `None`.
    pub frag: Option<f64>,
    pub cap: f64,
    pub health: &'a str,
}

/// The columns asked of `zpool list`, in order.
pub const ZPOOL_COLUMNS: &str = "name,size,alloc,free,frag,cap,health";

/// Parses one tab-separated `zpool list -Hp` line.
pub fn zpool_line(line: &str) -> Result<ZpoolLine<'_>, &'static str> {
    let mut f = line.split('\t');
    let mut next = || f.next().ok_or("fewer than 7 columns");
    let name = next()?;
    let num = |s: &str| -> Result<f64, &'static str> {
        s.trim_end_matches('%')
            .parse::<u64>()
            .map(|v| v as f64)
            .map_err(|_| "a column that is not a number")
    };
    let size = num(next()?)?;
    let alloc = num(next()?)?;
    let free = num(next()?)?;
    let frag = match next()? {
        "-" => None,
        s => Some(num(s)?),
    };
    let cap = num(next()?)?;
    let health = next()?;
    if name.is_empty() || health_code(health).is_none() {
        return Err("no pool name or an unknown health");
    }
    Ok(ZpoolLine {
        name,
        size,
        alloc,
        free,
        frag,
        cap,
        health,
    })
}
