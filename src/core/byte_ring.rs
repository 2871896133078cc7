//! A fixed-capacity FIFO of variable-size items (log records, say), bounded in bytes and
//! in items, allocated once.
//!
//! [`super::ring::Ring`] holds fixed-size `Copy` values; items of different sizes need
//! their bytes kept somewhere bounded too. As smoltcp's `PacketBuffer`, each item is one
//! contiguous run of a byte ring, described by an entry of a second, fixed-length ring; an
//! item that does not fit before the end of the bytes starts again at 0 (the tail is left
//! unused until the reader passes it). The policy when full is the memory ring's: the
//! oldest items are dropped, and the caller counts them. Like the ring, items carry
//! sequence numbers, so a reader that copied a batch out can acknowledge exactly what it
//! sent even if items were dropped meanwhile.

use std::collections::VecDeque;

pub struct ByteRing {
    /// Empty until the first push, then `capacity` long.
    data: Box<[u8]>,
    capacity: usize,
    /// (start, len) of each item in `data`, oldest first; never longer than `max_items`.
    items: VecDeque<(usize, usize)>,
    max_items: usize,
    /// Bytes of the items held (not counting the unused tail of a wrap).
    bytes: usize,
    head_seq: u64,
    /// Sequence number of the first item placed at 0 by the latest wrap: while older items
    /// are held the bytes are wrapped. (Positions alone cannot tell: an empty item placed
    /// right at the head looks like no wrap at all.)
    wrap_seq: u64,
}

/// An item larger than the whole ring: it is refused, nothing is dropped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub len: usize,
    pub capacity: usize,
}

impl ByteRing {
    pub fn with_capacity(capacity: usize, max_items: usize) -> ByteRing {
        ByteRing {
            data: Box::default(),
            capacity,
            items: VecDeque::new(),
            max_items,
            bytes: 0,
            head_seq: 0,
            wrap_seq: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of the items held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sequence number of the oldest item held (or of the next one pushed, when empty).
    pub fn head_seq(&self) -> u64 {
        self.head_seq
    }

    /// Appends a copy of `item`, dropping the oldest items until it fits. Returns how many
    /// were dropped; an item larger than the ring (or any item when it holds no items) is
    /// refused and nothing is dropped.
    pub fn push_overwrite(&mut self, item: &[u8]) -> Result<u64, TooLarge> {
        if item.len() > self.capacity || self.max_items == 0 {
            return Err(TooLarge {
                len: item.len(),
                capacity: self.capacity,
            });
        }
        if self.data.is_empty() && self.capacity > 0 {
            self.data = vec![0; self.capacity].into_boxed_slice();
            self.items = VecDeque::with_capacity(self.max_items);
        }
        let mut dropped = 0;
        let (start, wraps) = loop {
            if self.items.len() < self.max_items {
                if let Some(place) = self.place(item.len()) {
                    break place;
                }
            }
            // Something is held: an empty ring fits any item up to its capacity.
            self.consume(1);
            dropped += 1;
        };
        if wraps {
            self.wrap_seq = self.head_seq + self.items.len() as u64;
        }
        self.data[start..start + item.len()].copy_from_slice(item);
        self.items.push_back((start, item.len()));
        self.bytes += item.len();
        Ok(dropped)
    }

    /// Whether an item of `len` bytes fits now without dropping any.
    pub fn fits(&self, len: usize) -> bool {
        len <= self.capacity && self.items.len() < self.max_items && self.place(len).is_some()
    }

    /// Where an item of `len` bytes would start, if it fits now, and whether it starts
    /// again at 0 before older items.
    fn place(&self, len: usize) -> Option<(usize, bool)> {
        let (Some(&(head, _)), Some(&(last, last_len))) = (self.items.front(), self.items.back())
        else {
            return Some((0, false));
        };
        let end = last + last_len;
        if self.head_seq >= self.wrap_seq {
            // Held bytes lie in [head, end): room after them, else before them.
            if self.capacity - end >= len {
                Some((end, false))
            } else if head >= len {
                Some((0, true))
            } else {
                None
            }
        } else {
            // Wrapped: held bytes lie in [head, capacity) and [0, end).
            (head - end >= len).then_some((end, false))
        }
    }

    /// The item `i` places after the oldest.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let &(start, len) = self.items.get(i)?;
        Some(&self.data[start..start + len])
    }

    /// The items held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.items
            .iter()
            .map(|&(start, len)| &self.data[start..start + len])
    }

    /// Removes the `n` oldest items (fewer if fewer are held).
    pub fn consume(&mut self, n: usize) {
        for _ in 0..n {
            let Some((_, len)) = self.items.pop_front() else {
                return;
            };
            self.bytes -= len;
            self.head_seq += 1;
        }
    }

    /// Removes every item whose sequence number is below `seq` (see `Ring::consume_to`).
    pub fn consume_to(&mut self, seq: u64) {
        let n = seq.saturating_sub(self.head_seq);
        self.consume(usize::try_from(n).unwrap_or(usize::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(r: &ByteRing) -> Vec<Vec<u8>> {
        r.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn items_come_out_as_they_went_in() {
        let mut r = ByteRing::with_capacity(64, 8);
        for item in [&b"one"[..], b"", b"three", b"four"] {
            assert_eq!(r.push_overwrite(item), Ok(0));
        }
        assert_eq!(contents(&r), [&b"one"[..], b"", b"three", b"four"]);
        assert_eq!((r.len(), r.bytes()), (4, 12));
        r.consume(2);
        assert_eq!(r.get(0), Some(&b"three"[..]));
        assert_eq!(r.head_seq(), 2);
    }

    #[test]
    fn a_full_ring_drops_the_oldest_until_the_new_item_fits() {
        let mut r = ByteRing::with_capacity(10, 8);
        assert_eq!(r.push_overwrite(b"aaaa"), Ok(0));
        assert_eq!(r.push_overwrite(b"bbbb"), Ok(0));
        // 2 bytes left at the end, none before: "aaaa" goes, "cccc" wraps to 0.
        assert_eq!(r.push_overwrite(b"cccc"), Ok(1));
        assert_eq!(contents(&r), [b"bbbb", b"cccc"]);
        // Wrapped: the room is between "cccc" and "bbbb" (0 bytes), so "bbbb" goes.
        assert_eq!(r.push_overwrite(b"dd"), Ok(1));
        assert_eq!(contents(&r), [&b"cccc"[..], b"dd"]);
        assert_eq!(r.head_seq(), 2);
    }

    #[test]
    fn the_item_count_is_bounded_too() {
        let mut r = ByteRing::with_capacity(1000, 3);
        for i in 0..5u8 {
            r.push_overwrite(&[i]).unwrap();
        }
        assert_eq!(contents(&r), [[2], [3], [4]]);
    }

    #[test]
    fn an_item_larger_than_the_ring_is_refused_and_costs_nothing() {
        let mut r = ByteRing::with_capacity(8, 4);
        r.push_overwrite(b"keep").unwrap();
        assert_eq!(
            r.push_overwrite(&[0; 9]),
            Err(TooLarge {
                len: 9,
                capacity: 8
            })
        );
        assert_eq!(contents(&r), [b"keep"]);
        assert!(ByteRing::with_capacity(8, 0).push_overwrite(b"x").is_err());
    }

    #[test]
    fn a_batch_is_acknowledged_by_sequence_even_after_drops() {
        let mut r = ByteRing::with_capacity(8, 8);
        r.push_overwrite(b"aaa").unwrap();
        r.push_overwrite(b"bbb").unwrap();
        let (start, taken) = (r.head_seq(), 2);
        // While the batch is written, "aaa" is dropped for a new item.
        assert_eq!(r.push_overwrite(b"cc"), Ok(0));
        assert_eq!(r.push_overwrite(b"dd"), Ok(1));
        r.consume_to(start + taken);
        assert_eq!(
            contents(&r),
            [b"cc", b"dd"],
            "only what was sent is removed"
        );
    }

    /// Random pushes and consumes against a plain list: the ring always holds the newest
    /// items pushed and not consumed, in order, within its bounds, and every other item was
    /// either consumed or counted as dropped. (Empty items included: they broke a first
    /// version that told a wrap from the positions alone.)
    #[test]
    fn random_use_keeps_the_newest_items_within_bounds() {
        for seed in [0x9e37_79b9_7f4a_7c15u64, 1, 0xdead_beef, 42] {
            random_use(seed);
        }
    }

    fn random_use(mut seed: u64) {
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let mut r = ByteRing::with_capacity(100, 12);
        let mut pushed: Vec<Vec<u8>> = Vec::new();
        let (mut dropped, mut consumed) = (0u64, 0u64);
        for step in 0..20_000u32 {
            if next(4) == 0 {
                let n = next(3) as usize;
                consumed += n.min(r.len()) as u64;
                r.consume(n);
            } else {
                let len = next(40) as usize;
                let item: Vec<u8> = (0..len).map(|i| (step as usize + i) as u8).collect();
                dropped += r.push_overwrite(&item).unwrap();
                pushed.push(item);
            }
            assert!(r.bytes() <= r.capacity() && r.len() <= 12);
            assert_eq!(dropped + consumed + r.len() as u64, pushed.len() as u64);
            assert_eq!(r.head_seq(), dropped + consumed);
            let newest = &pushed[pushed.len() - r.len()..];
            assert_eq!(contents(&r), newest, "step {step}");
        }
    }
}
