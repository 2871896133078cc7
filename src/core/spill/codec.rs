//! What the store asks of an item kind: how a batch of items becomes a frame (and, for
//! kinds with shared definitions such as series names, a frame of the side file that the
//! segments refer to), how a frame becomes items again, and how to count a frame's items
//! without keeping them. Samples are one kind ([`super::samples`]); log records will be
//! another.

/// The codec's side of a spill directory. Writing: the store says when a segment or a side
/// file starts, then asks for frames. Reading: the store hands over side-file frames and
/// the frames before the resume point (`learn`), then the frames to replay (`decode`).
pub trait Codec {
    type Item;
    /// What items are encoded against and decoded into (the series table for samples).
    type Table;

    /// Whether definitions go to a side file (`.dict`) rather than into the segments.
    fn uses_side_file(&self) -> bool;
    /// The next frame opens a segment.
    fn start_segment(&mut self);
    /// The next frame's definitions open a new side file: everything is defined again.
    fn start_side_file(&mut self);
    /// Appends `items` as one frame to `frame`, and the definitions they need that the
    /// side file lacks as one frame to `side` (left empty when there are none).
    fn encode(
        &mut self,
        items: &[Self::Item],
        table: &Self::Table,
        frame: &mut Vec<u8>,
        side: &mut Vec<u8>,
    ) -> Result<Summary, postcard::Error>;

    /// Replay moves to another side file (or, without one, another segment).
    fn reset_reader(&mut self);
    /// Records the definitions in a CRC-checked payload, skipping its items.
    fn learn(&mut self, payload: &[u8]) -> Result<(), postcard::Error>;
    /// Decodes a CRC-checked payload into `out` (cleared first). Returns how many items
    /// could not be kept (their definition was lost to damage, or the table is full).
    fn decode(
        &mut self,
        payload: &[u8],
        table: &mut Self::Table,
        out: &mut Vec<Self::Item>,
    ) -> Result<u64, postcard::Error>;

    /// Counts a frame's items and follows the definitions: `defined[i]` says whether
    /// index `i` was defined by a readable frame so far (this frame's are added).
    fn census(payload: &[u8], defined: &mut Vec<bool>) -> Result<Census, postcard::Error>;
}

/// Count and time span of a frame's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub items: u64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// What a scan learns of one frame: its summary, and how many of its items need a
/// definition that no readable frame before it defined (they cannot be replayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    pub summary: Summary,
    pub undefined: u64,
}
