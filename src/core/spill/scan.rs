//! Reading the files of a buffer directory: one frame at a time (past damaged bytes to the
//! next whole frame), and the scan of every file at open and for `rtcollector buffer status`.

use super::*;

/// How a scan counts a frame's items: the codec's [`Codec::census`].
pub(super) type CensusFn = fn(&[u8], &mut Vec<bool>) -> Result<codec::Census, postcard::Error>;

pub(super) enum Read {
    Frame {
        next_offset: u64,
    },
    BadCrc {
        next_offset: u64,
    },
    /// Damaged bytes (a bad header or length), then a whole frame again at `resume`.
    Skip {
        resume: u64,
    },
    /// No more bytes.
    End,
    /// Damaged bytes to the end (a torn last frame, junk): the rest of the segment is skipped.
    Damaged,
}

/// Reads the frame at `offset` of `file`; its payload lands in `buf`.
pub(super) fn read_frame(file: &File, offset: u64, buf: &mut Vec<u8>) -> io::Result<Read> {
    let file_len = file.metadata()?.len();
    if offset >= file_len {
        return Ok(Read::End);
    }
    match read_whole_frame(file, offset, file_len, buf)? {
        Some(read) => Ok(read),
        None => Ok(match resync(file, offset, file_len, buf)? {
            Some(resume) => Read::Skip { resume },
            None => Read::Damaged,
        }),
    }
}

/// The frame at `offset`, or `None` when no frame header with a length that fits starts
/// there.
pub(super) fn read_whole_frame(
    file: &File,
    offset: u64,
    file_len: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Read>> {
    if file_len - offset < frame::HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header = [0u8; frame::HEADER_LEN];
    file.read_exact_at(&mut header, offset)?;
    let frame::Header::Frame { len, crc } = frame::parse_header(&header) else {
        return Ok(None);
    };
    let start = offset + frame::HEADER_LEN as u64;
    if file_len - start < len as u64 {
        return Ok(None);
    }
    buf.resize(len, 0);
    file.read_exact_at(buf, start)?;
    let next_offset = start + len as u64;
    if frame::crc_ok(buf, crc) {
        Ok(Some(Read::Frame { next_offset }))
    } else {
        Ok(Some(Read::BadCrc { next_offset }))
    }
}

/// After damaged bytes at `offset`: the start of the next whole frame whose CRC holds, so
/// one bad length field does not take the frames behind it along.
pub(super) fn resync(
    file: &File,
    offset: u64,
    file_len: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<u64>> {
    let from = offset + 1;
    let mut rest = vec![0u8; (file_len - from) as usize];
    file.read_exact_at(&mut rest, from)?;
    let mut at = 0;
    while let Some(hit) = find_magic(&rest[at..]) {
        let candidate = from + (at + hit) as u64;
        if let Some(Read::Frame { .. }) = read_whole_frame(file, candidate, file_len, buf)? {
            return Ok(Some(candidate));
        }
        at += hit + 1;
    }
    Ok(None)
}

pub(super) fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(frame::MAGIC.len())
        .position(|w| w == frame::MAGIC)
}

pub(super) struct Scan {
    pub(super) segs: VecDeque<Segment>,
    /// The dictionaries the segments refer to.
    pub(super) dicts: VecDeque<Dict>,
    /// The highest segment number in the directory, readable or not.
    pub(super) newest: Option<u64>,
    pub(super) position_seg: Option<u64>,
    pub(super) cursor: Cursor,
    pub(super) dropped: u64,
    pub(super) corrupt_frames: u64,
    /// Entries named like segments that could not be read, skipped.
    pub(super) unreadable: Vec<(PathBuf, io::Error)>,
    /// Segments of 0 bytes (removed when tidying).
    pub(super) empty: Vec<u64>,
}

/// Reads a buffer directory. With `tidy`, removes what the position says was consumed,
/// empty segments, and a left-over temp file; without, changes nothing (for `status`).
/// An entry that cannot be read is skipped and listed; only an unreadable directory fails.
pub(super) fn scan_dir(dir: &Path, tidy: bool, census: CensusFn) -> io::Result<Scan> {
    let (mut ids, mut dict_ids) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(id) = seg_id(name) {
            ids.push(id);
        } else if let Some(id) = dict_id(name) {
            dict_ids.push(id);
        }
    }
    ids.sort_unstable();
    dict_ids.sort_unstable();
    let newest = ids.last().max(dict_ids.last()).copied();
    let position = plausible_position(dir, newest);
    if tidy {
        let _ = fs::remove_file(dir.join(POSITION_TMP));
    }
    let start = position.as_ref().map_or(0, |p| p.seg);
    let mut scan = Scan {
        segs: VecDeque::new(),
        dicts: VecDeque::new(),
        newest,
        position_seg: position.as_ref().map(|p| p.seg),
        cursor: Cursor::default(),
        dropped: position.as_ref().map_or(0, |p| p.dropped),
        corrupt_frames: 0,
        unreadable: Vec::new(),
        empty: Vec::new(),
    };
    let mut buf = Vec::new();
    let dicts = scan_dicts(dir, &dict_ids, &mut buf, &mut scan, census);
    for id in ids {
        let path = seg_path(dir, id);
        if id < start {
            if tidy {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        let from = match &position {
            Some(p) if p.seg == id => p.offset,
            _ => 0,
        };
        let defined = match dicts.iter().rev().find(|(d, _)| d.id <= id) {
            None => Vec::new(),
            Some((_, Some(defined))) => defined.clone(),
            Some((d, None)) => {
                let e =
                    io::Error::other(format!("its dictionary {:016x}.dict cannot be read", d.id));
                scan.unreadable.push((path, e));
                continue;
            }
        };
        let found = match scan_segment_from(&path, id, from, defined, &mut buf, census) {
            Ok(found) => found,
            Err(e) => {
                scan.unreadable.push((path, e));
                continue;
            }
        };
        scan.corrupt_frames += found.corrupt;
        if found.seg.bytes == 0 {
            scan.empty.push(id);
            if tidy {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if scan.segs.is_empty() {
            scan.cursor = Cursor {
                seg: id,
                offset: found.from,
                read: found.read,
            };
        }
        scan.segs.push_back(found.seg);
    }
    let all: VecDeque<Dict> = dicts.iter().map(|(d, _)| *d).collect();
    for d in all.iter().copied() {
        if scan
            .segs
            .iter()
            .any(|s| dictionary_of(&all, s.id) == Some(d.id))
        {
            scan.dicts.push_back(d);
        } else if tidy {
            let _ = fs::remove_file(dict_path(dir, d.id));
        }
    }
    Ok(scan)
}

/// Reads every dictionary file: its size and which indices it defines (`None` when it
/// cannot be read; it is listed as unreadable, and so are its segments).
pub(super) fn scan_dicts(
    dir: &Path,
    ids: &[u64],
    buf: &mut Vec<u8>,
    scan: &mut Scan,
    census: CensusFn,
) -> Vec<(Dict, Option<Vec<bool>>)> {
    let mut out = Vec::new();
    for &id in ids {
        let path = dict_path(dir, id);
        let read = open_regular(&path).and_then(|file| {
            let mut defined = Vec::new();
            let found = scan_segment(&file, id, 0, &mut defined, buf, census)?;
            Ok((found.seg.bytes, found.corrupt, defined))
        });
        match read {
            Ok((bytes, corrupt, defined)) => {
                scan.corrupt_frames += corrupt;
                out.push((Dict { id, bytes }, Some(defined)));
            }
            Err(e) => {
                scan.unreadable.push((path, e));
                out.push((Dict { id, bytes: 0 }, None));
            }
        }
    }
    out
}

/// The position file, if it is whole and names a segment that can be: one past the newest
/// segment on disk means data would be skipped, so replay starts at the oldest instead
/// (at-least-once). Its dropped count is kept either way.
pub(super) fn plausible_position(dir: &Path, newest: Option<u64>) -> Option<PositionFile> {
    let Some(p) = read_position(dir) else {
        if dir.join(POSITION).exists() {
            log::warn!(
                "{}: the position file is damaged; replaying from the oldest segment",
                dir.display()
            );
        }
        return None;
    };
    if p.seg < u64::MAX && newest.is_none_or(|n| p.seg <= n) {
        return Some(p);
    }
    log::warn!(
        "{}: the position file names segment {:016x}, after the newest one; replaying from the oldest segment",
        dir.display(),
        p.seg
    );
    Some(PositionFile {
        seg: 0,
        offset: 0,
        dropped: p.dropped,
    })
}

/// Opens a file of the buffer for reading, refusing anything else named like one (a FIFO
/// would block the open, a directory the reads).
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    File::open(path)
}

/// What the scan of one segment found.
pub(super) struct SegmentScan {
    pub(super) seg: Segment,
    /// Where replay starts: the position's offset, or 0 when that is no frame boundary.
    pub(super) from: u64,
    /// Samples before `from`, delivered already.
    pub(super) read: u64,
    pub(super) corrupt: u64,
    /// Whether a frame starts at `from`.
    pub(super) from_found: bool,
}

/// Scans segment `id` with replay to start at `from`; an offset that is not where a frame
/// starts (a position file from elsewhere) would skip what it does not know: the segment
/// is then read from its start.
pub(super) fn scan_segment_from(
    path: &Path,
    id: u64,
    from: u64,
    defined: Vec<bool>,
    buf: &mut Vec<u8>,
    census: CensusFn,
) -> io::Result<SegmentScan> {
    let file = open_regular(path)?;
    let found = scan_segment(&file, id, from, &mut defined.clone(), buf, census)?;
    if found.from_found {
        return Ok(found);
    }
    log::warn!(
        "{}: the position file names offset {from}, where no frame starts; replaying the segment from its start",
        path.display()
    );
    let mut defined = defined;
    scan_segment(&file, id, 0, &mut defined, buf, census)
}

/// Counts a segment's samples (and those before `from`, already delivered), the samples
/// whose series neither its dictionary (`defined` on entry) nor a readable frame before
/// defined, and damaged frames, and whether a frame starts at `from`. `bytes` counts the
/// whole file, damage included: it takes room on the disk. Reads dictionary files too.
pub(super) fn scan_segment(
    file: &File,
    id: u64,
    from: u64,
    defined: &mut Vec<bool>,
    buf: &mut Vec<u8>,
    census: CensusFn,
) -> io::Result<SegmentScan> {
    let file_len = file.metadata()?.len();
    let mut seg = Segment {
        id,
        checked_to: file_len,
        ..Segment::default()
    };
    let (mut offset, mut read, mut corrupt) = (0u64, 0u64, 0u64);
    let mut from_found = from == 0;
    loop {
        from_found |= offset == from;
        match read_frame(file, offset, buf)? {
            Read::Frame { next_offset } => {
                match census(buf, defined) {
                    Ok(c) if next_offset <= from => {
                        // Delivered already: counted, but not in the time span.
                        read += c.summary.items;
                        seg.samples += c.summary.items;
                        seg.bytes += next_offset - offset;
                    }
                    Ok(c) => {
                        seg.note(&c.summary, next_offset - offset);
                        seg.lost += c.undefined;
                    }
                    Err(_) => {
                        corrupt += 1;
                        seg.bytes += next_offset - offset;
                    }
                }
                offset = next_offset;
            }
            Read::BadCrc {
                next_offset: resume,
            }
            | Read::Skip { resume } => {
                corrupt += 1;
                seg.bytes += resume - offset;
                offset = resume;
            }
            Read::End => break,
            Read::Damaged => {
                corrupt += 1;
                seg.bytes += file_len - offset;
                break;
            }
        }
    }
    Ok(SegmentScan {
        seg,
        from,
        read,
        corrupt,
        from_found,
    })
}

/// What is in a buffer directory of samples, read without changing it. A directory that
/// does not exist holds nothing; one that cannot be read is an error, never an empty buffer.
pub fn status(dir: &Path) -> io::Result<DiskStatus> {
    status_of(dir, <SampleCodec as Codec>::census)
}

/// [`status`] for a directory of any item kind.
pub fn status_of(dir: &Path, census: CensusFn) -> io::Result<DiskStatus> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DiskStatus::default()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return Err(io::Error::other("not a directory")),
        Ok(_) => {}
    }
    let scan = scan_dir(dir, false, census)?;
    let mut st = DiskStatus {
        segments: scan.segs.len() as u64,
        bytes: scan.segs.iter().map(|s| s.bytes).sum(),
        dictionary_bytes: scan.dicts.iter().map(|d| d.bytes).sum(),
        dropped: scan.dropped,
        corrupt_frames: scan.corrupt_frames,
        undeliverable: scan.segs.iter().map(|s| s.lost).sum(),
        unreadable: scan.unreadable.len() as u64,
        ..DiskStatus::default()
    };
    let total: u64 = scan.segs.iter().map(|s| s.samples).sum();
    st.samples = total
        .saturating_sub(scan.cursor.read)
        .saturating_sub(st.undeliverable);
    st.oldest_ts = scan.segs.iter().filter_map(|s| s.first_ts).min();
    st.newest_ts = scan.segs.iter().filter_map(|s| s.last_ts).max();
    Ok(st)
}
