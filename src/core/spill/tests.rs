use super::*;
use crate::core::metric::{Sample, SeriesTable};
use crate::core::stats::OutputStats;

const T0: i64 = 1_700_000_000_000;

fn cfg(dir: &Path, max_bytes: u64) -> SpillConfig {
    SpillConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        sync_interval: Duration::from_secs(10),
    }
}

fn stats() -> Rc<OutputStats> {
    Rc::new(OutputStats {
        name: "test".into(),
        ..Default::default()
    })
}

/// `series` series with realistic names and labels, `ticks` samples each, 10 s apart.
fn samples(table: &mut SeriesTable, series: usize, ticks: usize, from_tick: usize) -> Vec<Sample> {
    let ids: Vec<_> = (0..series)
        .map(|i| {
            let iface = format!("eth{i}");
            table
                .intern("net_rx_bytes", "_rate", &[("iface", &iface), ("dir", "rx")])
                .unwrap()
        })
        .collect();
    let mut out = Vec::new();
    for t in from_tick..from_tick + ticks {
        for (i, id) in ids.iter().enumerate() {
            out.push(Sample {
                series: *id,
                ts_ms: T0 + t as i64 * 10_000,
                value: (t * 1000 + i) as f64 + 0.5,
            });
        }
    }
    out
}

/// Everything the spill replays, as (series name and iface label, ts, value), acknowledging
/// each batch.
fn drain(spill: &mut Spill, table: &mut SeriesTable) -> Vec<(String, i64, f64)> {
    let mut got = Vec::new();
    let mut batch = Vec::new();
    while let Some(token) = spill.next_batch(table, &mut batch) {
        for s in &batch {
            got.push(identify(table, s));
        }
        spill.ack(token);
    }
    got
}

fn identify(table: &SeriesTable, s: &Sample) -> (String, i64, f64) {
    let series = table.get(s.series);
    let key = format!(
        "{}{{{}}}",
        series.name,
        series
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    (key, s.ts_ms, s.value)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_across_processes_keeps_series_identity_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 5, 30, 0);
    let want: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written[..70], &table, 40));
    assert!(spill.append(&written[70..], &table, 40));
    spill.maybe_sync(true);
    assert_eq!(spill.pending(), 150);
    drop(spill);

    // Another process: a table where other series got the low ids first.
    let mut fresh = SeriesTable::new("pi", 1000);
    fresh.intern("something_else", "", &[]).unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 150);
    assert_eq!(drain(&mut spill, &mut fresh), want);
    assert_eq!(spill.pending(), 0);
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a drained buffer leaves no file"
    );
}

#[test]
fn a_torn_last_frame_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 4, 30, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 40));
    spill.maybe_sync(true);
    drop(spill);
    let seg = &segments(dir.path())[0];
    let len = fs::metadata(seg).unwrap().len();
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    f.set_len(len - 7).unwrap();

    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    assert_eq!(st.disk_corrupt_frames.get(), 1);
    let got = drain(&mut spill, &mut table);
    let want: Vec<_> = written[..80].iter().map(|s| identify(&table, s)).collect();
    assert_eq!(got, want, "the whole frames before the torn one");
}

#[test]
fn a_flipped_byte_mid_segment_loses_only_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 4, 30, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 40));
    spill.maybe_sync(true);
    drop(spill);
    let seg = &segments(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    // Into the payload of the second frame (frames are equal in size here).
    let at = bytes.len() / 3 + bytes.len() / 6;
    bytes[at] ^= 0x40;
    fs::write(seg, &bytes).unwrap();

    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    let got = drain(&mut spill, &mut table);
    let mut want: Vec<_> = written[..40].iter().map(|s| identify(&table, s)).collect();
    want.extend(written[80..].iter().map(|s| identify(&table, s)));
    assert_eq!(got, want);
    assert!(st.disk_corrupt_frames.get() >= 1);
}

#[test]
fn damaged_header_skips_the_rest_of_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 1, 4000, 0);
    // 32 KiB cap: 4 KiB segments, so several of them.
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), stats());
    assert!(spill.append(&written[..1000], &table, 100));
    spill.maybe_sync(true);
    drop(spill);
    let segs = segments(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    let mut bytes = fs::read(&segs[0]).unwrap();
    bytes[0] = b'X';
    fs::write(&segs[0], &bytes).unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), stats());
    let got = drain(&mut spill, &mut table);
    assert!(!got.is_empty() && got.len() < 1000);
    assert_eq!(got.last().unwrap().1, written[999].ts_ms);
}

#[test]
fn a_restart_resumes_at_the_persisted_position_and_a_deleted_one_replays_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 50, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 20));
    let mut batch = Vec::new();
    for _ in 0..2 {
        let t = spill.next_batch(&mut table, &mut batch).unwrap();
        spill.ack(t);
    }
    spill.maybe_sync(true);
    drop(spill);

    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 60);
    let rest: Vec<_> = written[40..].iter().map(|s| identify(&table, s)).collect();
    let mut probe = Vec::new();
    let t = spill.next_batch(&mut table, &mut probe).unwrap();
    assert_eq!(identify(&table, &probe[0]), rest[0]);
    let _ = t;
    drop(spill);

    fs::remove_file(dir.path().join(POSITION)).unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 100, "without a position, everything again");
    let all: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    assert_eq!(drain(&mut spill, &mut table), all);
}

#[test]
fn a_garbage_position_file_and_stray_files_do_not_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 10, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 20));
    spill.maybe_sync(true);
    drop(spill);
    fs::write(dir.path().join(POSITION), b"garbage").unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    fs::write(dir.path().join("00000000000000ff.seg"), b"").unwrap();
    fs::write(dir.path().join("0000000000000100.seg"), b"RF\xff\xff").unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    let all: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    assert_eq!(drain(&mut spill, &mut table), all);
}

#[test]
fn max_disk_buffer_drops_the_oldest_segment_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 10, 400, 0);
    let max = 32 << 10;
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), max), st.clone());
    for chunk in written.chunks(100) {
        assert!(spill.append(chunk, &table, 100));
        let on_disk: u64 = segments(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(on_disk <= max, "{on_disk} > {max}");
    }
    let kept = spill.pending();
    assert!(kept > 0 && kept < written.len() as u64);
    assert_eq!(st.disk_dropped.get(), written.len() as u64 - kept);
    assert_eq!(st.dropped.get(), st.disk_dropped.get());
    let got = drain(&mut spill, &mut table);
    let want: Vec<_> = written[written.len() - kept as usize..]
        .iter()
        .map(|s| identify(&table, s))
        .collect();
    assert_eq!(got, want, "the newest samples survive, in order");
}

#[test]
fn an_unwritable_directory_means_memory_only_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 10, 0);
    let st = stats();
    let mut spill = Spill::new(cfg(&file.join("buffer"), 64 << 20), st.clone());
    assert!(!spill.append(&written, &table, 20));
    assert!(spill.is_disabled());
    assert_eq!(st.disk_io_errors.get(), 1);
    assert!(!spill.append(&written, &table, 20));
    assert!(spill.next_batch(&mut table, &mut Vec::new()).is_none());
    assert_eq!(st.disk_io_errors.get(), 1, "not retried within a minute");
    // Each failed retry doubles the wait, up to an hour.
    for want in [120, 240, 480] {
        spill.disabled_since = Some(Instant::now() - spill.retry_after);
        assert!(!spill.append(&written, &table, 20));
        assert_eq!(spill.retry_after, Duration::from_secs(want));
    }
}

/// The buffer directory goes away (kept at `<dir>.saved`) and a file takes its place, so that
/// starting a segment fails.
fn take_dir_away(buffer: &Path) {
    fs::rename(buffer, buffer.with_extension("saved")).unwrap();
    fs::write(buffer, b"x").unwrap();
}

/// The directory is back with what it held.
fn bring_dir_back(buffer: &Path) {
    fs::remove_file(buffer).unwrap();
    fs::rename(buffer.with_extension("saved"), buffer).unwrap();
}

#[test]
fn after_an_io_error_the_disk_is_tried_again_and_what_it_held_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let mut table = SeriesTable::new("pi", 1000);
    // One frame bigger than a segment (4 KiB at this cap): the next append starts a new
    // segment file, which is what fails below.
    let first = samples(&mut table, 50, 20, 0);
    let st = stats();
    let mut spill = Spill::new(cfg(&buffer, 32 << 10), st.clone());
    assert!(spill.append(&first, &table, first.len()));
    spill.maybe_sync(true);
    // The directory goes away and a file takes its place: writing fails.
    take_dir_away(&buffer);
    let second = samples(&mut table, 50, 2, 20);
    assert!(!spill.append(&second, &table, 1000));
    assert!(spill.is_disabled());
    // The disk is back with what it held; once the retry is due, both writing and
    // replaying work again, the older samples first.
    bring_dir_back(&buffer);
    spill.retry_after = Duration::ZERO;
    assert!(spill.append(&second, &table, 1000));
    assert!(!spill.is_disabled());
    let mut got = Vec::new();
    let mut out = Vec::new();
    while let Some(token) = spill.next_batch(&mut table, &mut out) {
        got.append(&mut out);
        spill.ack(token);
    }
    let want: Vec<Sample> = first.iter().chain(&second).copied().collect();
    assert_eq!(got, want);
    assert_eq!(st.disk_io_errors.get(), 1);
}

/// A buffer in `<tmp>/buffer` holding one frame bigger than a segment (so the next append
/// starts a segment file), whose next append failed: the directory was taken away (see
/// [`take_dir_away`]; [`bring_dir_back`] returns it).
struct FailedWrite {
    /// Bind it (`_dir: _tmp`) when destructuring: dropped, it deletes the directory.
    _dir: tempfile::TempDir,
    buffer: PathBuf,
    table: SeriesTable,
    written: Vec<Sample>,
    spill: Spill,
    stats: Rc<OutputStats>,
}

fn failed_write() -> FailedWrite {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 50, 20, 0);
    let stats = stats();
    let mut spill = Spill::new(cfg(&buffer, 32 << 10), stats.clone());
    assert!(spill.append(&written, &table, written.len()));
    spill.maybe_sync(true);
    take_dir_away(&buffer);
    assert!(!spill.append(&written, &table, 1000));
    FailedWrite {
        _dir: dir,
        buffer,
        table,
        written,
        spill,
        stats,
    }
}

#[test]
fn after_a_failed_write_what_is_on_disk_is_still_replayed_before_the_retry() {
    // Starting the next segment fails (a full disk does the same): writing stops...
    let FailedWrite {
        buffer,
        mut table,
        written,
        mut spill,
        stats: st,
        _dir: _tmp,
        ..
    } = failed_write();
    assert!(spill.is_disabled());
    bring_dir_back(&buffer);
    assert!(
        !spill.append(&written, &table, 1000),
        "no write before the retry"
    );
    // ...but replay goes on at once, oldest first, and empties the directory.
    let got = drain(&mut spill, &mut table);
    let want: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    assert_eq!(got, want);
    assert!(
        segments(&buffer).is_empty(),
        "delivered segments are removed"
    );
    assert_eq!(st.disk_io_errors.get(), 1);
    // Once the retry is due, the buffer takes samples again.
    spill.retry_after = Duration::ZERO;
    assert!(spill.append(&written, &table, 1000));
    assert!(!spill.is_disabled());
    assert_eq!(drain(&mut spill, &mut table), want);
}

#[test]
fn at_shutdown_a_failed_disk_is_tried_once_more_whatever_the_schedule() {
    let FailedWrite {
        buffer,
        mut table,
        written,
        mut spill,
        _dir: _tmp,
        ..
    } = failed_write();
    bring_dir_back(&buffer);
    assert!(
        !spill.append(&written, &table, 1000),
        "the retry is not due"
    );
    spill.retry_now();
    assert!(
        spill.append(&written, &table, 1000),
        "but shutdown tries anyway"
    );
    assert_eq!(drain(&mut spill, &mut table).len(), 2 * written.len());
}

#[test]
fn a_write_that_fails_midway_leaves_no_torn_frame_behind() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 50, 4, 0);
    let st = stats();
    let mut spill = Spill::new(cfg(&buffer, 64 << 20), st.clone());
    assert!(spill.append(&written, &table, 50));
    // Half a frame reached the disk before the device refused the rest.
    let seg = segments(&buffer).pop().expect("a segment");
    let whole = fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0x5a; 37]).unwrap();
    assert!(spill.stop_writing());
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        whole,
        "cut back to whole frames"
    );
    let got = drain(&mut spill, &mut table);
    assert_eq!(got.len(), written.len());
    assert_eq!(st.disk_corrupt_frames.get(), 0);
}

#[test]
fn a_buffer_that_cannot_be_read_is_read_again_once_the_retry_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 50, 20, 0);
    let mut spill = Spill::new(cfg(&buffer, 32 << 10), stats());
    assert!(spill.append(&written, &table, written.len()));
    spill.maybe_sync(true);
    take_dir_away(&buffer);
    assert!(spill.next_batch(&mut table, &mut Vec::new()).is_none());
    assert!(spill.is_disabled());
    bring_dir_back(&buffer);
    assert!(
        spill.next_batch(&mut table, &mut Vec::new()).is_none(),
        "not yet due"
    );
    spill.retry_after = Duration::ZERO;
    let mut out = Vec::new();
    let token = spill
        .next_batch(&mut table, &mut out)
        .expect("replays after the retry");
    spill.ack(token);
    assert_eq!(out, written[..out.len()]);
}

#[test]
fn status_reads_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        status(&dir.path().join("none")).unwrap(),
        DiskStatus::default()
    );
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 3, 20, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 30));
    spill.maybe_sync(true);
    let before: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let s = status(dir.path()).unwrap();
    assert_eq!(s.samples, 60);
    assert_eq!(s.segments, 1);
    assert_eq!(s.oldest_ts, Some(T0));
    assert_eq!(s.newest_ts, Some(T0 + 19 * 10_000));
    assert_eq!(
        s.bytes,
        fs::metadata(&segments(dir.path())[0]).unwrap().len()
    );
    let after: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after);

    // After one frame (10 ticks of 3 series) is delivered, it no longer counts.
    let t = spill.next_batch(&mut table, &mut Vec::new()).unwrap();
    spill.ack(t);
    spill.maybe_sync(true);
    let s = status(dir.path()).unwrap();
    assert_eq!(s.samples, 30);
    assert_eq!(s.oldest_ts, Some(T0 + 10 * 10_000));
}

/// The flash cost of buffering: bytes written per sample against one sample encoded on its
/// own with postcard. Target <= 1.5x. The realistic worst case: every flush of an outage
/// spills one tick, so each frame holds one sample of each series.
#[test]
fn flash_bytes_per_sample_stay_close_to_the_encoded_sample() {
    for series in [10, 100, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let mut table = SeriesTable::new("raspberrypi", 10_000);
        let ticks = 30;
        let written = samples(&mut table, series, ticks, 0);
        let st = stats();
        let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
        for tick in written.chunks(series) {
            assert!(spill.append(tick, &table, 1000));
        }
        let per_sample = st.disk_written_bytes.get() as f64 / written.len() as f64;
        let plain: f64 = written
            .iter()
            .map(|s| samples::plain_sample_len(s) as f64)
            .sum::<f64>()
            / written.len() as f64;
        let ratio = per_sample / plain;
        eprintln!(
            "{series} series, one tick per spill: {per_sample:.2} flash bytes per sample, encoded sample {plain:.2}, ratio {ratio:.2}"
        );
        assert!(ratio <= 1.5, "{series} series: ratio {ratio:.2}");
        let mut fresh = SeriesTable::new("raspberrypi", 10_000);
        assert_eq!(drain(&mut spill, &mut fresh).len(), written.len());
    }
}

#[test]
fn a_damaged_frame_loses_the_series_it_defined_for_the_rest_of_its_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let early = samples(&mut table, 2, 3, 0);
    let mut later_table = SeriesTable::new("pi", 1000);
    // Series 0-1 first appear in frame 1, series 2-3 in frame 2.
    let all = samples(&mut later_table, 4, 3, 3);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    // The layout of earlier builds: definitions in the segment's frames.
    spill.codec = SampleCodec::per_segment();
    assert!(spill.append(&early, &later_table, 100));
    assert!(spill.append(&all, &later_table, 100));
    assert!(spill.append(&all, &later_table, 100));
    spill.maybe_sync(true);
    drop(spill);
    let seg = &segments(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    // The second frame starts after the first: its header's length tells where.
    let first_len = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
    let second = frame::HEADER_LEN + first_len;
    bytes[second + frame::HEADER_LEN + 3] ^= 0x01;
    fs::write(seg, &bytes).unwrap();
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    let got = drain(&mut spill, &mut table);
    // Frame 1 (6 samples) whole; frame 2 gone; frame 3 keeps series 0-1 only (6 of 12).
    assert_eq!(got.len(), 6 + 6);
    assert_eq!(
        st.disk_dropped.get(),
        6,
        "the undefined series' samples are counted"
    );
    assert!(st.disk_corrupt_frames.get() >= 1);
}

#[test]
fn replayed_series_keep_the_host_they_were_written_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("old-name", 1000);
    let written = samples(&mut table, 2, 3, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 100));
    let mut renamed = SeriesTable::new("new-name", 1000);
    let mut batch = Vec::new();
    spill.next_batch(&mut renamed, &mut batch).unwrap();
    assert_eq!(renamed.get(batch[0].series).label("host"), Some("old-name"));
    assert_eq!(renamed.host(), "new-name");
}

#[test]
fn replayed_series_keep_the_input_that_wrote_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 1, 0);
    let input = table.origin_id("linux_net#2");
    table.set_origin(written[0].series, input);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 100));
    let mut fresh = SeriesTable::new("pi", 1000);
    fresh.origin_id("linux_cpu");
    let mut batch = Vec::new();
    spill.next_batch(&mut fresh, &mut batch).unwrap();
    let origins: Vec<Option<&str>> = batch.iter().map(|s| fresh.origin(s.series)).collect();
    assert_eq!(origins, [Some("linux_net#2"), None]);
}

#[test]
fn a_frame_without_the_trailing_inputs_of_an_older_build_still_decodes() {
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 2, 0);
    let input = table.origin_id("linux_cpu");
    table.set_origin(written[0].series, input);
    let mut encoder = samples::Encoder::per_segment();
    let mut bytes = Vec::new();
    encoder
        .encode(&written, &table, &mut bytes, &mut Vec::new())
        .unwrap();
    let payload = &bytes[frame::HEADER_LEN..];
    // The older layout: the same body, nothing after it.
    let tail = postcard::to_stdvec(&vec!["linux_cpu", ""]).unwrap();
    assert!(payload.ends_with(&tail), "the inputs trail the body");
    let old = &payload[..payload.len() - tail.len()];
    let decode = |payload: &[u8]| {
        let mut fresh = SeriesTable::new("pi", 1000);
        let (mut dict, mut out) = (samples::Dictionary::default(), Vec::new());
        let lost = dict.decode(payload, &mut fresh, &mut out).unwrap();
        let origins: Vec<Option<String>> = out
            .iter()
            .map(|s| fresh.origin(s.series).map(String::from))
            .collect();
        (
            lost,
            out.iter().map(|s| (s.ts_ms, s.value)).collect::<Vec<_>>(),
            origins,
        )
    };
    let (lost_new, values_new, origins_new) = decode(payload);
    let (lost_old, values_old, origins_old) = decode(old);
    assert_eq!((lost_new, lost_old), (0, 0));
    assert_eq!(values_new, values_old, "the same samples either way");
    assert_eq!(values_new.len(), 4);
    assert!(origins_new.contains(&Some("linux_cpu".into())));
    assert!(
        origins_old.iter().all(Option::is_none),
        "no input is invented"
    );
}

#[test]
fn a_position_left_without_segments_does_not_make_new_segments_look_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 10, 0);
    write_position(
        dir.path(),
        &Cursor {
            seg: 5,
            offset: 100,
            read: 0,
        },
        0,
        true,
    )
    .unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 100));
    spill.maybe_sync(true);
    drop(spill);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 20);
    assert_eq!(drain(&mut spill, &mut table).len(), 20);
}

/// Frame start offsets of a segment file.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + frame::HEADER_LEN <= bytes.len() && bytes[at..at + 2] == frame::MAGIC {
        out.push(at);
        let len = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        at += frame::HEADER_LEN + len;
    }
    out
}

#[test]
fn an_entry_named_like_a_segment_that_cannot_be_read_is_skipped_and_the_rest_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 1, 3000, 0);
    // 32 KiB cap: 4 KiB segments, so several of them.
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), stats());
    assert!(spill.append(&written[..1000], &table, 100));
    spill.maybe_sync(true);
    drop(spill);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // The second segment becomes a directory: its samples are gone, the others are not.
    let first_gone = frame_starts(&fs::read(&segs[0]).unwrap()).len() * 100;
    let gone = frame_starts(&fs::read(&segs[1]).unwrap()).len() * 100;
    fs::remove_file(&segs[1]).unwrap();
    fs::create_dir(&segs[1]).unwrap();
    // And one named after the newest: a new segment must not take its number.
    let beyond = dir.path().join("00000000000000f0.seg");
    fs::create_dir(&beyond).unwrap();
    // A FIFO, whose open would wait for a writer forever.
    let fifo = dir.path().join("00000000000000e0.seg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());

    assert_eq!(status(dir.path()).unwrap().unreadable, 3);
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), st.clone());
    assert!(!spill.is_disabled());
    assert_eq!(spill.pending(), 1000 - gone as u64);
    assert!(
        spill.append(&written[1000..1100], &table, 100),
        "new samples still go to disk"
    );
    assert!(segments(dir.path())
        .iter()
        .any(|p| p.file_name().unwrap().to_str().unwrap() > "00000000000000f0.seg"));
    let got = drain(&mut spill, &mut table);
    let mut want: Vec<_> = written[..1000]
        .iter()
        .map(|s| identify(&table, s))
        .collect();
    want.drain(first_gone..first_gone + gone);
    want.extend(written[1000..1100].iter().map(|s| identify(&table, s)));
    assert_eq!(got, want);
    assert_eq!(st.disk_io_errors.get(), 0);
}

#[test]
fn a_huge_length_field_loses_its_frame_only_and_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 4, 30, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 20));
    spill.maybe_sync(true);
    drop(spill);
    let seg = &segments(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    let starts = frame_starts(&bytes);
    assert_eq!(starts.len(), 6);
    // The third frame's length field; the first frame defined every series.
    bytes[starts[2] + 2..starts[2] + 6].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(seg, &bytes).unwrap();

    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    assert_eq!(st.disk_corrupt_frames.get(), 1);
    assert_eq!(spill.pending(), 100, "the frames behind it are promised");
    let got = drain(&mut spill, &mut table);
    let mut want: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    want.drain(40..60);
    assert_eq!(got, want);
    assert_eq!(
        st.disk_corrupt_frames.get(),
        1,
        "counted at open, not again"
    );
}

#[test]
fn a_damaged_first_frame_promises_only_what_arrives_and_counts_the_rest_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let mut written = samples(&mut table, 4, 10, 0);
    // A fifth series first seen in the third frame: its samples survive.
    let late = table.intern("late", "", &[]).unwrap();
    let late_samples: Vec<Sample> = (0..10)
        .map(|t| Sample {
            series: late,
            ts_ms: T0 + t,
            value: t as f64,
        })
        .collect();
    written.extend(late_samples.iter().copied());
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    // The layout of earlier builds: definitions in the segment's frames.
    spill.codec = SampleCodec::per_segment();
    assert!(spill.append(&written, &table, 20));
    spill.maybe_sync(true);
    drop(spill);
    let seg = &segments(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    bytes[frame::HEADER_LEN + 5] ^= 0x40;
    fs::write(seg, &bytes).unwrap();

    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    assert_eq!(st.disk_corrupt_frames.get(), 1);
    let on_disk = status(dir.path()).unwrap();
    assert_eq!(on_disk.undeliverable, 20, "the second frame's 4 series");
    assert_eq!(on_disk.samples, 10);
    assert_eq!(spill.pending(), 10, "the promise: the late series only");
    let got = drain(&mut spill, &mut table);
    let want: Vec<_> = late_samples.iter().map(|s| identify(&table, s)).collect();
    assert_eq!(got, want);
    assert_eq!(
        st.disk_dropped.get(),
        20,
        "each undeliverable sample counted once"
    );
    assert_eq!(st.disk_corrupt_frames.get(), 1);
}

#[test]
fn an_empty_segment_is_noted_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 10, 0);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&written, &table, 20));
    spill.maybe_sync(true);
    drop(spill);
    fs::write(dir.path().join("0000000000000001.seg"), b"").unwrap();
    let scan = scan_dir(dir.path(), true, SampleCodec::census).unwrap();
    assert_eq!(scan.empty, [1]);
    assert_eq!(segments(dir.path()).len(), 1);
}

#[test]
fn a_position_naming_an_impossible_place_replays_the_segment_instead_of_losing_it() {
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 3, 20, 0);
    let all: Vec<_> = written.iter().map(|s| identify(&table, s)).collect();
    for (seg, offset) in [(0, 3), (0, 1 << 20), (u64::MAX, 0), (7, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
        assert!(spill.append(&written, &table, 15));
        spill.maybe_sync(true);
        drop(spill);
        let cursor = Cursor {
            seg,
            offset,
            read: 0,
        };
        write_position(dir.path(), &cursor, 0, true).unwrap();
        let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
        assert_eq!(spill.pending(), 60, "position ({seg}, {offset})");
        assert_eq!(
            drain(&mut spill, &mut table),
            all,
            "position ({seg}, {offset})"
        );
        assert!(spill.append(&written, &table, 15), "and spills again");
    }
}

#[test]
fn a_full_disk_buffer_keeps_one_streak_of_drops_until_the_output_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 10, 400, 0);
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), st.clone());
    for chunk in written.chunks(100) {
        assert!(spill.append(chunk, &table, 100));
    }
    let (segs, samples) = spill.full_streak.expect("a streak");
    assert!(segs > 1, "several segments dropped in one streak: {segs}");
    assert_eq!(samples, st.disk_dropped.get());
    let token = spill.next_batch(&mut table, &mut Vec::new()).unwrap();
    spill.ack(token);
    assert_eq!(spill.full_streak, None, "delivering again ends it");
}

#[test]
fn files_in_the_buffer_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("buffer").join("out");
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 10, 0);
    let mut spill = Spill::new(cfg(&dir, 64 << 20), stats());
    assert!(spill.append(&written, &table, 20));
    spill.maybe_sync(true);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("buffer")), 0o700);
    assert_eq!(mode(&segments(&dir)[0]), 0o600);
    assert_eq!(mode(&dir.join(POSITION)), 0o600);
}

/// A segment written by the format of builds before the cross-segment dictionary (each
/// segment names its series in its own frames): it must replay as it always did.
#[test]
fn a_segment_of_the_per_segment_dictionary_format_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/spill/testdata/v1");
    for entry in fs::read_dir(&fixture).unwrap() {
        let from = entry.unwrap().path();
        fs::copy(&from, dir.path().join(from.file_name().unwrap())).unwrap();
    }
    let mut table = SeriesTable::new("pi", 1000);
    // Other series first: indices on disk mean nothing in this process.
    table.intern("unrelated", "", &[]).unwrap();
    let mut written_table = SeriesTable::new("pi", 1000);
    let written = samples(&mut written_table, 3, 8, 0);
    let want: Vec<_> = written
        .iter()
        .map(|s| identify(&written_table, s))
        .collect();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 24);
    assert_eq!(drain(&mut spill, &mut table), want);
}

fn dicts(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dict"))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_share_one_dictionary_across_dropped_heads_restarts_and_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 10, 500, 0);
    let st = stats();
    // 32 KiB: 4 KiB segments, the oldest dropped as the cap is reached.
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), st.clone());
    for tick in written[..4000].chunks(10) {
        assert!(spill.append(tick, &table, 100));
    }
    spill.maybe_sync(true);
    assert!(st.disk_dropped.get() > 0, "heads were dropped");
    assert_eq!(dicts(dir.path()).len(), 1, "one dictionary for the process");
    // Half of what is left is delivered, then the process ends.
    let kept = spill.pending() as usize;
    let mut got = Vec::new();
    let mut batch = Vec::new();
    while got.len() < kept / 2 {
        let token = spill.next_batch(&mut table, &mut batch).unwrap();
        got.extend(batch.iter().map(|s| identify(&table, s)));
        spill.ack(token);
    }
    spill.maybe_sync(true);
    drop(spill);

    // A second process: its own dictionary for what it adds, the first one still read.
    let mut fresh = SeriesTable::new("pi", 1000);
    fresh.intern("something_else", "", &[]).unwrap();
    let mut spill = Spill::new(cfg(dir.path(), 1 << 20), stats());
    assert!(spill.append(&written[4000..], &table, 100));
    spill.maybe_sync(true);
    assert_eq!(dicts(dir.path()).len(), 2);
    drop(spill);
    let mut spill = Spill::new(cfg(dir.path(), 1 << 20), stats());
    got.extend(drain(&mut spill, &mut fresh));
    let want: Vec<_> = written[4000 - kept..]
        .iter()
        .map(|s| identify(&table, s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a drained buffer leaves no file, dictionaries included"
    );
}

#[test]
fn a_damaged_dictionary_frame_loses_its_series_and_the_promise_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let early = samples(&mut table, 2, 3, 0);
    // Series 0-1 defined by the first frame, series 2-3 by the second.
    let all = samples(&mut table, 4, 3, 3);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    assert!(spill.append(&early, &table, 100));
    assert!(spill.append(&all, &table, 100));
    spill.maybe_sync(true);
    drop(spill);
    let dict = &dicts(dir.path())[0];
    let mut bytes = fs::read(dict).unwrap();
    let second = frame_starts(&bytes)[1];
    bytes[second + frame::HEADER_LEN + 3] ^= 0x01;
    fs::write(dict, &bytes).unwrap();

    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), st.clone());
    assert_eq!(st.disk_corrupt_frames.get(), 1);
    assert_eq!(status(dir.path()).unwrap().undeliverable, 6);
    assert_eq!(spill.pending(), 12);
    let got = drain(&mut spill, &mut table);
    assert_eq!(got.len(), 12, "series 0-1 of both frames");
    assert_eq!(st.disk_dropped.get(), 6);
    assert_eq!(st.disk_corrupt_frames.get(), 1, "counted once");
}

/// At 50 000 series a 256 KiB segment used to repeat every series' name (70 B a sample,
/// 4.2x): with the names in the dictionary, a tick of every series costs about what a
/// sample does, within the 1.5x budget, and a 16 MiB buffer holds many ticks.
#[test]
fn fifty_thousand_series_cost_no_more_flash_per_sample_than_a_few() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("raspberrypi", 60_000);
    let series = 50_000;
    let ticks = 10;
    let written = samples(&mut table, series, ticks, 0);
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), 16 << 20), st.clone());
    for tick in written.chunks(series) {
        assert!(spill.append(tick, &table, 1000));
    }
    let per = st.disk_written_bytes.get() as f64 / written.len() as f64;
    let plain =
        written.iter().map(samples::plain_sample_len).sum::<usize>() as f64 / written.len() as f64;
    assert!(per / plain <= 1.5, "{per:.2} B vs {plain:.2} B a sample");
    assert_eq!(st.disk_dropped.get(), 0, "ten ticks fit in 16 MiB");
    assert_eq!(spill.pending(), written.len() as u64);
}

/// Series names count toward `max_disk_buffer`: with a dictionary larger than a quarter of
/// the cap, each segment starts a new one, and dropping a segment drops the dictionary only
/// it used, so segments and dictionaries together stay under the cap.
#[test]
fn dictionaries_count_toward_the_cap_and_leave_with_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 300, 40, 0);
    // 300 names take about 15 KiB: more than a quarter of 48 KiB.
    let max = 48 << 10;
    let st = stats();
    let mut spill = Spill::new(cfg(dir.path(), max), st.clone());
    for tick in written.chunks(300) {
        assert!(spill.append(tick, &table, 300));
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= max, "{on_disk} > {max}");
        assert_eq!(on_disk, st.disk_bytes.get());
    }
    assert!(dicts(dir.path()).len() >= 2, "{:?}", dicts(dir.path()));
    let kept = spill.pending() as usize;
    assert!(kept > 0 && st.disk_dropped.get() > 0);
    let got = drain(&mut spill, &mut table);
    let want: Vec<_> = written[written.len() - kept..]
        .iter()
        .map(|s| identify(&table, s))
        .collect();
    assert_eq!(got, want, "the newest samples survive, in order");
}

/// A series id freed and given to another series while its segment is open: the writer
/// defines it again, so samples on either side of the reuse keep their own names.
#[test]
fn a_reused_series_id_is_defined_again_in_the_open_segment() {
    let mut table = SeriesTable::new("pi", 10);
    table.set_forget_after(Some(Duration::from_secs(1)));
    table.begin_collection(0);
    let a = table.intern("a", "", &[]).unwrap();
    let keep = table.intern("keep", "", &[]).unwrap();
    table.end_collection();
    let mut encoder = samples::Encoder::default();
    // What each encode wrote: the definitions it added to the dictionary, then its samples.
    let mut written: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut encode = |encoder: &mut samples::Encoder, samples: &[Sample], table: &SeriesTable| {
        let (mut refs, mut defs) = (Vec::new(), Vec::new());
        encoder
            .encode(samples, table, &mut refs, &mut defs)
            .unwrap();
        written.push((defs, refs));
    };
    let at = |series, v: f64| Sample {
        series,
        ts_ms: T0,
        value: v,
    };
    encode(&mut encoder, &[at(a, 1.0), at(keep, 2.0)], &table);
    // `a` goes unseen; its slot is freed (nothing holds it) and given to `b`.
    table.begin_collection(5_000);
    table.intern("keep", "", &[]).unwrap();
    table.end_collection();
    table.sweep(|_| {}, |ids| encoder.forget(ids));
    table.begin_collection(5_000);
    let b = table.intern("b", "", &[]).unwrap();
    table.end_collection();
    assert_eq!(b, a, "the slot is reused");
    encode(&mut encoder, &[at(b, 3.0), at(keep, 4.0)], &table);

    let mut fresh = SeriesTable::new("pi", 10);
    let mut dict = samples::Dictionary::default();
    let (mut out, mut named) = (Vec::new(), Vec::<(String, f64)>::new());
    for (defs, refs) in &written {
        for frame in [defs, refs].into_iter().filter(|f| !f.is_empty()) {
            dict.decode(&frame[frame::HEADER_LEN..], &mut fresh, &mut out)
                .unwrap();
            named.extend(
                out.iter()
                    .map(|s| (fresh.get(s.series).name.to_string(), s.value)),
            );
        }
    }
    assert_eq!(
        named,
        [
            ("a".into(), 1.0),
            ("keep".into(), 2.0),
            ("b".into(), 3.0),
            ("keep".into(), 4.0)
        ]
    );
}

/// A kill -9 during a replay: what the output took before it is not sent again by the
/// next process, though no sync came in between (the position is written, unsynced, at
/// every acknowledgement).
#[test]
fn batches_acknowledged_before_a_kill_are_not_replayed_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 2, 30, 0);
    {
        let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
        assert!(spill.append(&written, &table, 10));
        spill.maybe_sync(true);
    }
    let mut first = Spill::new(cfg(dir.path(), 64 << 20), stats());
    let mut batch = Vec::new();
    let token = first.next_batch(&mut table, &mut batch).expect("a batch");
    let taken = batch.len();
    first.ack(token);
    // Killed: no sync, no orderly drop.
    std::mem::forget(first);
    let mut second = Spill::new(cfg(dir.path(), 64 << 20), stats());
    let rest = drain(&mut second, &mut table);
    assert_eq!(rest.len(), written.len() - taken);
    let expected: Vec<_> = written[taken..]
        .iter()
        .map(|s| identify(&table, s))
        .collect();
    assert_eq!(rest, expected);
}

#[test]
fn replay_interns_only_the_series_its_samples_name_however_many_the_dictionary_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    // 500 series defined in the dictionary file; only the last 5 still have samples on disk.
    let all = samples(&mut table, 500, 1, 0);
    let tail: Vec<Sample> = all[495..].to_vec();
    {
        let mut spill = Spill::new(cfg(dir.path(), 32 << 10), stats());
        // One frame bigger than a segment: the tail goes to a segment of its own.
        assert!(spill.append(&all, &table, all.len()));
        assert!(spill.append(&tail, &table, tail.len()));
        let mut batch = Vec::new();
        let token = spill.next_batch(&mut table, &mut batch).expect("a batch");
        assert_eq!(batch.len(), 500);
        spill.ack(token);
        spill.maybe_sync(true);
    }
    // A new process whose table has room for 10 series.
    let mut small = SeriesTable::new("pi", 10);
    let mut spill = Spill::new(cfg(dir.path(), 32 << 10), stats());
    let st = spill.stats.clone();
    let got = drain(&mut spill, &mut small);
    let want: Vec<_> = tail.iter().map(|s| identify(&table, s)).collect();
    assert_eq!(got, want, "every sample on disk is replayed");
    assert_eq!(
        small.len(),
        5,
        "only the series named by samples are interned"
    );
    assert_eq!(st.dropped.get(), 0);
}

/// The directory a build of 2026-12-06 (the dictionary-file format) left after spilling
/// `golden_samples` in frames of 7 and acknowledging the first: what later builds must
/// still read. Written once by `write_the_golden_buffer` (ignored), then never again.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/spill/testdata/dictionary-format")
}

fn golden_samples(table: &mut SeriesTable) -> Vec<Sample> {
    let mut out = Vec::new();
    for t in 0..6i64 {
        for (i, name) in ["cpu_usage_user", "mem_used_bytes", "net_rx_bytes"]
            .iter()
            .enumerate()
        {
            let core = format!("cpu{t}");
            let id = table.intern(name, "", &[("core", &core)]).unwrap();
            let origin = table.origin_id("linux_cpu");
            table.set_origin(id, origin);
            out.push(Sample {
                series: id,
                ts_ms: T0 + t * 1000,
                value: t as f64 * 10.0 + i as f64 + 0.25,
            });
        }
    }
    out
}

#[test]
#[ignore = "writes the golden buffer directory; run once, by hand"]
fn write_the_golden_buffer() {
    let dir = golden_dir();
    let _ = fs::remove_dir_all(&dir);
    let mut table = SeriesTable::new("golden", 100);
    let written = golden_samples(&mut table);
    let mut spill = Spill::new(cfg(&dir, 64 << 20), stats());
    assert!(spill.append(&written, &table, 7));
    let mut batch = Vec::new();
    let token = spill.next_batch(&mut table, &mut batch).expect("a batch");
    spill.ack(token);
    spill.maybe_sync(true);
}

#[test]
fn a_buffer_written_by_the_dictionary_format_build_still_replays() {
    let copy = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(golden_dir()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    let mut expected_table = SeriesTable::new("golden", 100);
    let written = golden_samples(&mut expected_table);
    let want: Vec<_> = written[7..]
        .iter()
        .map(|s| identify(&expected_table, s))
        .collect();
    let mut table = SeriesTable::new("pi", 100);
    let mut spill = Spill::new(cfg(copy.path(), 64 << 20), stats());
    assert_eq!(spill.pending(), 11);
    let mut got = Vec::new();
    let mut batch = Vec::new();
    while let Some(token) = spill.next_batch(&mut table, &mut batch) {
        for s in &batch {
            got.push(identify(&table, s));
            assert_eq!(table.origin(s.series), Some("linux_cpu"));
        }
        spill.ack(token);
    }
    assert_eq!(
        got, want,
        "same series (host included), timestamps and values"
    );
}

#[test]
fn a_disk_that_works_again_is_next_retried_after_a_minute() {
    let FailedWrite {
        buffer,
        table,
        written,
        mut spill,
        _dir: _tmp,
        ..
    } = failed_write();
    assert_eq!(spill.retry_after, Duration::from_secs(60));
    spill.disabled_since = Some(Instant::now() - spill.retry_after);
    assert!(!spill.append(&written, &table, 1000), "still failing");
    assert_eq!(spill.retry_after, Duration::from_secs(120));
    bring_dir_back(&buffer);
    spill.disabled_since = Some(Instant::now() - spill.retry_after);
    assert!(spill.append(&written, &table, 1000), "works again");
    take_dir_away(&buffer);
    assert!(!spill.append(&written, &table, 1000));
    assert_eq!(
        spill.retry_after,
        Duration::from_secs(60),
        "the next outage starts over"
    );
    bring_dir_back(&buffer);
}

#[test]
fn a_finished_replay_holds_no_series_any_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 5, 4, 0);
    {
        let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
        assert!(spill.append(&written, &table, 10));
        spill.maybe_sync(true);
    }
    let mut fresh = SeriesTable::new("pi", 1000);
    let mut spill = Spill::new(cfg(dir.path(), 64 << 20), stats());
    let mut batch = Vec::new();
    let token = spill.next_batch(&mut fresh, &mut batch).expect("a batch");
    let mut held = vec![false; 16];
    spill.mark_held(&mut held);
    assert!(
        held.iter().any(|&h| h),
        "ids are held while the replay runs"
    );
    spill.ack(token);
    assert_eq!(
        drain(&mut spill, &mut fresh).len(),
        written.len() - batch.len()
    );
    let mut held = vec![false; 16];
    spill.mark_held(&mut held);
    assert_eq!(
        held.iter().filter(|&&h| h).count(),
        0,
        "a drained buffer lets its series be forgotten"
    );
}

#[test]
fn a_disk_whose_retry_is_due_no_longer_counts_as_off() {
    let FailedWrite {
        _dir: _tmp,
        buffer,
        mut spill,
        ..
    } = failed_write();
    assert!(spill.is_disabled());
    bring_dir_back(&buffer);
    spill.disabled_since = Some(Instant::now() - spill.retry_after);
    assert!(!spill.is_disabled(), "the next use tries the disk");
}
