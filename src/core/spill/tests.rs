use super::*;
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

#[test]
fn a_disabled_buffer_is_read_again_on_replay_once_the_retry_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let mut table = SeriesTable::new("pi", 1000);
    let written = samples(&mut table, 50, 20, 0);
    let mut spill = Spill::new(cfg(&buffer, 32 << 10), stats());
    assert!(spill.append(&written, &table, written.len()));
    spill.maybe_sync(true);
    take_dir_away(&buffer);
    assert!(!spill.append(&written, &table, 1000));
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
            .map(|s| frame::plain_sample_len(s) as f64)
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
    let mut encoder = frame::Encoder::default();
    let mut bytes = Vec::new();
    encoder.encode(&written, &table, &mut bytes).unwrap();
    let payload = &bytes[frame::HEADER_LEN..];
    // The older layout: the same body, nothing after it.
    let tail = postcard::to_stdvec(&vec!["linux_cpu", ""]).unwrap();
    assert!(payload.ends_with(&tail), "the inputs trail the body");
    let old = &payload[..payload.len() - tail.len()];
    let decode = |payload: &[u8]| {
        let mut fresh = SeriesTable::new("pi", 1000);
        let (mut dict, mut out) = (Vec::new(), Vec::new());
        let lost = frame::decode(payload, &mut dict, &mut fresh, &mut out).unwrap();
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
    let mut encoder = frame::Encoder::default();
    let mut bytes = Vec::new();
    let at = |series, v: f64| Sample {
        series,
        ts_ms: T0,
        value: v,
    };
    encoder
        .encode(&[at(a, 1.0), at(keep, 2.0)], &table, &mut bytes)
        .unwrap();
    // `a` goes unseen; its slot is freed (nothing holds it) and given to `b`.
    table.begin_collection(5_000);
    table.intern("keep", "", &[]).unwrap();
    table.end_collection();
    table.sweep(|_| {}, |ids| encoder.forget(ids));
    table.begin_collection(5_000);
    let b = table.intern("b", "", &[]).unwrap();
    table.end_collection();
    assert_eq!(b, a, "the slot is reused");
    let first = bytes.len();
    encoder
        .encode(&[at(b, 3.0), at(keep, 4.0)], &table, &mut bytes)
        .unwrap();

    let mut fresh = SeriesTable::new("pi", 10);
    let (mut dict, mut out, mut named) = (Vec::new(), Vec::new(), Vec::<(String, f64)>::new());
    for frame in [&bytes[..first], &bytes[first..]] {
        frame::decode(&frame[frame::HEADER_LEN..], &mut dict, &mut fresh, &mut out).unwrap();
        named.extend(
            out.iter()
                .map(|s| (fresh.get(s.series).name.to_string(), s.value)),
        );
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
