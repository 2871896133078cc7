//! A fixed-capacity FIFO of `Copy` values, allocated once.
//!
//! Capacity comes from the config at run time, so this is a boxed slice rather than a
//! const-generic array. It is allocated at the first push, so that `check` and an output
//! that never receives a sample cost nothing. When full, [`Ring::push_overwrite`] drops the oldest value: for an
//! outage buffer the newest data is the most valuable, and the caller counts the loss.

pub struct Ring<T: Copy + Default> {
    /// Empty until the first push, then `capacity` long.
    slots: Box<[T]>,
    capacity: usize,
    head: usize,
    len: usize,
    /// Sequence number of the oldest value: counts every value ever removed, so a reader
    /// that peeked can acknowledge exactly what it sent even if overwrites happened since.
    head_seq: u64,
}

impl<T: Copy + Default> Ring<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Ring {
            slots: Box::default(),
            capacity,
            head: 0,
            len: 0,
            head_seq: 0,
        }
    }

    /// Sequence number of the oldest value held (or of the next one pushed, when empty).
    pub fn head_seq(&self) -> u64 {
        self.head_seq
    }

    /// Removes every value whose sequence number is below `seq`: acknowledges a batch
    /// peeked at `head_seq() == start` as `consume_to(start + batch_len)`, which removes
    /// only what is still there.
    pub fn consume_to(&mut self, seq: u64) {
        let n = seq.saturating_sub(self.head_seq);
        self.consume(usize::try_from(n).unwrap_or(usize::MAX));
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Appends `value`; when full, the oldest value is dropped. Returns how many were
    /// dropped (0 or 1; 1 with zero capacity, where nothing is ever kept).
    pub fn push_overwrite(&mut self, value: T) -> usize {
        let cap = self.capacity;
        if cap == 0 {
            return 1;
        }
        if self.slots.is_empty() {
            self.slots = vec![T::default(); cap].into_boxed_slice();
        }
        let tail = (self.head + self.len) % cap;
        self.slots[tail] = value;
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.head_seq += 1;
            1
        } else {
            self.len += 1;
            0
        }
    }

    /// Copies up to `max` of the oldest values into `out` (cleared first) without removing
    /// them: they stay until [`Ring::consume`] acknowledges them.
    pub fn peek_into<U: From<T>>(&self, max: usize, out: &mut Vec<U>) {
        self.copy_range_into(0, max, out);
    }

    /// Copies up to `max` values starting `skip` after the oldest into `out` (cleared
    /// first), converting each; nothing is removed.
    pub fn copy_range_into<U: From<T>>(&self, skip: usize, max: usize, out: &mut Vec<U>) {
        out.clear();
        let (a, b) = self.as_slices();
        let values = a.iter().chain(b).skip(skip).take(max);
        out.extend(values.map(|&v| U::from(v)));
    }

    /// Removes the `n` oldest values (fewer if there are fewer).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.head = (self.head + n) % self.slots.len();
        self.len -= n;
        self.head_seq += n as u64;
    }

    /// The contents, oldest first, as two slices.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let cap = self.slots.len();
        if self.len == 0 {
            return (&[], &[]);
        }
        let end = self.head + self.len;
        if end <= cap {
            (&self.slots[self.head..end], &[])
        } else {
            (&self.slots[self.head..], &self.slots[..end - cap])
        }
    }

    pub fn clear(&mut self) {
        self.consume(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(r: &Ring<u32>) -> Vec<u32> {
        let (a, b) = r.as_slices();
        a.iter().chain(b).copied().collect()
    }

    #[test]
    fn keeps_fifo_order_across_the_wrap() {
        let mut r = Ring::with_capacity(3);
        for i in 0..3 {
            assert_eq!(r.push_overwrite(i), 0);
        }
        r.consume(2);
        r.push_overwrite(3);
        r.push_overwrite(4);
        assert_eq!(contents(&r), [2, 3, 4]);
        let mut out: Vec<u32> = Vec::new();
        r.peek_into(10, &mut out);
        assert_eq!(out, [2, 3, 4]);
        let mut wide: Vec<u64> = Vec::new();
        r.copy_range_into(1, 1, &mut wide);
        assert_eq!(wide, [3]);
        r.copy_range_into(2, 5, &mut wide);
        assert_eq!(wide, [4]);
    }

    #[test]
    fn full_ring_drops_the_oldest_and_says_so() {
        let mut r = Ring::with_capacity(2);
        r.push_overwrite(1);
        r.push_overwrite(2);
        assert_eq!(r.push_overwrite(3), 1);
        assert_eq!(contents(&r), [2, 3]);
    }

    #[test]
    fn peek_does_not_remove_and_consume_does() {
        let mut r = Ring::with_capacity(4);
        for i in 0..4 {
            r.push_overwrite(i);
        }
        let mut out: Vec<u32> = Vec::new();
        r.peek_into(3, &mut out);
        assert_eq!(out, [0, 1, 2]);
        assert_eq!(r.len(), 4);
        r.consume(3);
        assert_eq!(contents(&r), [3]);
        r.consume(99);
        assert!(r.is_empty());
    }

    #[test]
    fn acknowledging_after_overwrites_removes_only_what_was_sent() {
        let mut r = Ring::with_capacity(4);
        for i in 0..4 {
            r.push_overwrite(i);
        }
        let start = r.head_seq();
        let mut sent: Vec<u32> = Vec::new();
        r.peek_into(3, &mut sent);
        // two newer values push out 0 and 1 while the batch is in flight
        r.push_overwrite(4);
        r.push_overwrite(5);
        r.consume_to(start + sent.len() as u64);
        assert_eq!(contents(&r), [3, 4, 5]);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut r: Ring<u32> = Ring::with_capacity(0);
        assert_eq!(r.push_overwrite(1), 1);
        assert!(r.is_empty());
        let mut out: Vec<u32> = vec![9];
        r.peek_into(5, &mut out);
        assert!(out.is_empty());
        r.consume(1);
    }

    #[test]
    fn slots_are_allocated_at_the_first_push_only() {
        // `check` builds every output's ring: a ring of 10 million samples must cost nothing
        // until a sample arrives.
        let mut r: Ring<u64> = Ring::with_capacity(10_000_000);
        assert_eq!(r.slots.len(), 0);
        assert_eq!(r.capacity(), 10_000_000);
        assert!(!r.is_full());
        r.clear();
        assert!(r.as_slices().0.is_empty());
        r.push_overwrite(7);
        assert_eq!(r.slots.len(), 10_000_000);
        assert_eq!(contents_u64(&r), [7]);
    }

    fn contents_u64(r: &Ring<u64>) -> Vec<u64> {
        let (a, b) = r.as_slices();
        a.iter().chain(b).copied().collect()
    }
}
