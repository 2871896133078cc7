//! The store alone: segments, position, cap, damage and status with payloads it knows
//! nothing about (byte records, no definitions, no side file).

use super::codec::{Census, Codec, Summary};
use super::*;
use crate::core::stats::OutputStats;

/// Records of bytes, each framed as a u16 length and its bytes.
#[derive(Default)]
struct Records;

impl Codec for Records {
    type Item = Vec<u8>;
    type Table = ();

    fn uses_side_file(&self) -> bool {
        false
    }
    fn start_segment(&mut self) {}
    fn start_side_file(&mut self) {}

    fn encode(
        &mut self,
        items: &[Vec<u8>],
        _: &(),
        out: &mut Vec<u8>,
        _side: &mut Vec<u8>,
    ) -> Result<Summary, postcard::Error> {
        let mut payload = Vec::new();
        for item in items {
            payload.extend_from_slice(&(item.len() as u16).to_le_bytes());
            payload.extend_from_slice(item);
        }
        frame::seal(&payload, out);
        Ok(Summary {
            items: items.len() as u64,
            ..Summary::default()
        })
    }

    fn reset_reader(&mut self) {}
    fn learn(&mut self, _: &[u8]) -> Result<(), postcard::Error> {
        Ok(())
    }

    fn decode(
        &mut self,
        mut payload: &[u8],
        _: &mut (),
        out: &mut Vec<Vec<u8>>,
    ) -> Result<u64, postcard::Error> {
        out.clear();
        while let [lo, hi, rest @ ..] = payload {
            let len = u16::from_le_bytes([*lo, *hi]) as usize;
            let item = rest
                .get(..len)
                .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            out.push(item.to_vec());
            payload = &rest[len..];
        }
        Ok(0)
    }

    fn census(payload: &[u8], _: &mut Vec<bool>) -> Result<Census, postcard::Error> {
        let mut out = Vec::new();
        Records.decode(payload, &mut (), &mut out)?;
        Ok(Census {
            summary: Summary {
                items: out.len() as u64,
                ..Summary::default()
            },
            undefined: 0,
        })
    }
}

fn open(dir: &Path, max_bytes: u64) -> (Spill<Records>, Rc<OutputStats>) {
    let stats = Rc::new(OutputStats {
        name: "records".into(),
        ..Default::default()
    });
    let cfg = SpillConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        sync_interval: Duration::from_secs(10),
    };
    (Spill::with_codec(cfg, stats.clone(), Records), stats)
}

/// Records of different lengths, each naming its number.
fn records(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| format!("record {i} {}", "x".repeat(i % 17)).into_bytes())
        .collect()
}

fn drain(spill: &mut Spill<Records>) -> Vec<Vec<u8>> {
    let (mut got, mut batch) = (Vec::new(), Vec::new());
    while let Some(token) = spill.next_batch(&mut (), &mut batch) {
        got.append(&mut batch);
        spill.ack(token);
    }
    got
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn records_come_back_in_order_in_another_process_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let written = records(0, 100);
    {
        let (mut spill, _) = open(dir.path(), 64 << 20);
        assert!(spill.append(&written, &(), 10));
        spill.maybe_sync(true);
    }
    assert!(
        files(dir.path()).iter().all(|f| !f.ends_with(".dict")),
        "no side file without definitions: {:?}",
        files(dir.path())
    );
    let (mut spill, _) = open(dir.path(), 64 << 20);
    assert_eq!(spill.pending(), 100);
    assert_eq!(drain(&mut spill), written);
    assert_eq!(
        files(dir.path()),
        Vec::<String>::new(),
        "delivered: emptied"
    );
}

#[test]
fn acknowledged_frames_are_not_read_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let written = records(0, 50);
    {
        let (mut spill, _) = open(dir.path(), 64 << 20);
        assert!(spill.append(&written, &(), 10));
        let mut batch = Vec::new();
        for _ in 0..2 {
            let token = spill.next_batch(&mut (), &mut batch).expect("a batch");
            spill.ack(token);
        }
        spill.maybe_sync(true);
    }
    let (mut spill, _) = open(dir.path(), 64 << 20);
    assert_eq!(spill.pending(), 30);
    assert_eq!(drain(&mut spill), written[20..]);
}

#[test]
fn the_cap_drops_the_oldest_segments_and_counts_what_they_held() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spill, stats) = open(dir.path(), 32 << 10);
    let written = records(0, 4000);
    for chunk in written.chunks(100) {
        assert!(spill.append(chunk, &(), 100));
    }
    let got = drain(&mut spill);
    assert!(got.len() < written.len(), "the cap was reached");
    assert_eq!(
        got,
        written[written.len() - got.len()..],
        "the newest survive"
    );
    assert_eq!(stats.disk_dropped.get(), (written.len() - got.len()) as u64);
}

#[test]
fn a_damaged_frame_costs_its_records_only_and_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let written = records(0, 30);
    {
        let (mut spill, _) = open(dir.path(), 64 << 20);
        assert!(spill.append(&written, &(), 10));
        spill.maybe_sync(true);
    }
    let seg = dir.path().join(format!("{:016x}.seg", 0));
    let mut bytes = fs::read(&seg).unwrap();
    let first_len = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
    let second_frame = frame::HEADER_LEN + first_len;
    bytes[second_frame + frame::HEADER_LEN + 1] ^= 0x55;
    fs::write(&seg, &bytes).unwrap();
    let status = status_of(dir.path(), Records::census).unwrap();
    assert_eq!((status.samples, status.corrupt_frames), (20, 1));
    let (mut spill, stats) = open(dir.path(), 64 << 20);
    let got = drain(&mut spill);
    let want: Vec<_> = written[..10]
        .iter()
        .chain(&written[20..])
        .cloned()
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.disk_corrupt_frames.get(), 1);
}
