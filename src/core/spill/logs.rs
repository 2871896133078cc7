//! The codec of log records: a frame's payload is a [`LogBatch`] as it is (length-prefixed
//! encoded records), and a batch is one item of the store, so spilling copies bytes and
//! allocates per frame, never per record. Records carry their own text: no side file.

use super::codec::{Census, Codec, Summary};
use super::frame;
use crate::core::logs::{timestamp_of, LogBatch};

#[derive(Default)]
pub struct LogCodec;

/// The payload's batch, or why it is not one.
fn batch_of(payload: &[u8]) -> Result<LogBatch, postcard::Error> {
    LogBatch::from_payload(payload).ok_or(postcard::Error::DeserializeUnexpectedEnd)
}

fn summary_of(batch: &LogBatch) -> Summary {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for ts in batch.raw().filter_map(timestamp_of) {
        lo = lo.min(ts);
        hi = hi.max(ts);
    }
    if lo > hi {
        (lo, hi) = (0, 0);
    }
    Summary {
        items: batch.len() as u64,
        first_ts: lo,
        last_ts: hi,
    }
}

impl Codec for LogCodec {
    type Item = LogBatch;
    type Table = ();

    fn uses_side_file(&self) -> bool {
        false
    }
    fn start_segment(&mut self) {}
    fn start_side_file(&mut self) {}

    /// The batches become one frame: their payloads simply follow each other.
    fn encode(
        &mut self,
        items: &[LogBatch],
        _: &(),
        frame: &mut Vec<u8>,
        _side: &mut Vec<u8>,
    ) -> Result<Summary, postcard::Error> {
        let Some((first, rest)) = items.split_first() else {
            return Ok(Summary::default());
        };
        if rest.is_empty() {
            frame::seal(first.as_bytes(), frame);
            return Ok(summary_of(first));
        }
        let mut joined = first.clone();
        for batch in rest {
            joined.extend(batch);
        }
        frame::seal(joined.as_bytes(), frame);
        Ok(summary_of(&joined))
    }

    fn reset_reader(&mut self) {}

    fn learn(&mut self, _: &[u8]) -> Result<(), postcard::Error> {
        Ok(())
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _: &mut (),
        out: &mut Vec<LogBatch>,
    ) -> Result<u64, postcard::Error> {
        out.clear();
        out.push(batch_of(payload)?);
        Ok(0)
    }

    fn census(payload: &[u8], _: &mut Vec<bool>) -> Result<Census, postcard::Error> {
        Ok(Census {
            summary: summary_of(&batch_of(payload)?),
            undefined: 0,
        })
    }
}
