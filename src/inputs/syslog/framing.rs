//! Syslog over a byte stream (RFC 6587): octet counting (`LEN SP MSG`) and non-transparent
//! framing (messages ended by a trailer, LF or NUL). The kind is told per message by its
//! first byte, as rsyslog does: a digit starts a count, `<` a trailer-ended message; the
//! `framing` option is kept for configs written for the Python agent.
//!
//! Bounded: the buffer never holds more than one message of at most `max` bytes (plus a
//! count). A longer message is cut: its first `max` bytes come out as
//! [`Frame::Truncated`] and the rest is read and discarded.

/// What the next bytes of the stream held.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Message(&'a [u8]),
    /// The first `max` bytes of a longer message.
    Truncated(&'a [u8]),
    /// A count that is no count (`12x`, more than 10 digits): the bytes up to the next
    /// trailer are dropped.
    BadCount,
}

pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    trailer: u8,
    /// Bytes of an over-long counted message still to discard.
    skip: usize,
    /// Discarding up to the next trailer (the rest of an over-long or garbled message).
    skip_line: bool,
    /// Bytes held when [`Self::spare`] was asked for.
    held: usize,
}

/// The most digits of a count (a count of up to 9 999 999 999 bytes).
const MAX_COUNT_DIGITS: usize = 10;
/// Bytes read at a time while the buffer is small.
const FIRST_READ: usize = 4096;

impl Framer {
    pub fn new(max: usize, trailer: u8) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            max: max.max(1),
            trailer,
            skip: 0,
            skip_line: false,
            held: 0,
        }
    }

    /// Where the next read goes: free space after the held bytes, made by moving them to
    /// the front or growing the buffer up to `max` plus a count. Tell [`Self::filled`] how
    /// much was read.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let limit = self.max + MAX_COUNT_DIGITS + 1;
        let held = self.buf.len();
        self.held = held;
        let want = (held + FIRST_READ).min(limit).max(held + 1);
        self.buf.resize(want, 0);
        &mut self.buf[held..]
    }

    /// `n` bytes were read into [`Self::spare`].
    pub fn filled(&mut self, n: usize) {
        self.buf.truncate(self.held + n);
    }

    /// Bytes held that belong to no complete message yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, if the held bytes make one.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let data = &self.buf[self.start..];
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                self.start += n;
                if self.skip > 0 {
                    return None;
                }
                continue;
            }
            if self.skip_line {
                match data.iter().position(|&b| b == self.trailer) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip_line = false;
                        continue;
                    }
                    None => {
                        self.start += data.len();
                        return None;
                    }
                }
            }
            let blank = data
                .iter()
                .take_while(|&&b| matches!(b, b'\n' | b'\r' | b'\0' | b' '))
                .count();
            if blank > 0 {
                self.start += blank;
                continue;
            }
            let first = *data.first()?;
            return if first.is_ascii_digit() {
                self.counted()
            } else {
                self.until_trailer()
            };
        }
    }

    fn counted(&mut self) -> Option<Frame<'_>> {
        let data = &self.buf[self.start..];
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_COUNT_DIGITS || (digits < data.len() && data[digits] != b' ') {
            self.skip_line = true;
            return Some(Frame::BadCount);
        }
        if digits == data.len() {
            return None;
        }
        let len = data[..digits]
            .iter()
            .fold(0usize, |n, &d| n.saturating_mul(10).saturating_add(usize::from(d - b'0')));
        let body = self.start + digits + 1;
        let held = self.buf.len() - body;
        if len > self.max {
            if held < self.max {
                return None;
            }
            self.skip = len - self.max;
            self.start = body + self.max;
            return Some(Frame::Truncated(&self.buf[body..body + self.max]));
        }
        if held < len {
            return None;
        }
        self.start = body + len;
        Some(Frame::Message(&self.buf[body..body + len]))
    }

    fn until_trailer(&mut self) -> Option<Frame<'_>> {
        let from = self.start;
        let data = &self.buf[from..];
        match data.iter().position(|&b| b == self.trailer) {
            Some(i) if i <= self.max => {
                self.start = from + i + 1;
                Some(Frame::Message(&self.buf[from..from + i]))
            }
            _ if data.len() >= self.max => {
                self.start = from + self.max;
                self.skip_line = true;
                Some(Frame::Truncated(&self.buf[from..from + self.max]))
            }
            _ => None,
        }
    }

    /// At the end of the stream: what is held as a last message without its trailer.
    pub fn rest(&mut self) -> Option<&[u8]> {
        let data = &self.buf[self.start..];
        self.start = self.buf.len();
        let skipping = std::mem::take(&mut self.skip_line) || std::mem::take(&mut self.skip) > 0;
        (!data.is_empty() && !skipping && data[0] == b'<').then_some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns what came out.
    fn frames(input: &[u8], max: usize, step: usize) -> Vec<String> {
        let mut f = Framer::new(max, b'\n');
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let spare = f.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                f.filled(n);
                rest = &rest[n..];
                while let Some(frame) = f.next_frame() {
                    out.push(match frame {
                        Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                        Frame::Truncated(m) => format!("cut:{}", String::from_utf8_lossy(m)),
                        Frame::BadCount => "bad".into(),
                    });
                }
                assert!(f.pending() <= max + MAX_COUNT_DIGITS + 1);
            }
        }
        if let Some(r) = f.rest() {
            out.push(format!("rest:{}", String::from_utf8_lossy(r)));
        }
        out
    }

    #[test]
    fn counted_and_trailer_ended_messages_mix_and_split_anywhere() {
        let input = b"5 <1>ab<2>cd\n10 <3>x\ny z w\n\n<4>last";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(
                frames(input, 64, step),
                ["<1>ab", "<2>cd", "<3>x\ny z w", "rest:<4>last"],
                "step {step}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut_and_their_rest_skipped() {
        let mut input = b"<1>".to_vec();
        input.extend([b'a'; 30]);
        input.extend(b"\n<2>ok\n25 <3>bbbbbbbbbbbbbbbbbbbbbb<4>after\n");
        for step in [1, 5, 64] {
            assert_eq!(
                frames(&input, 10, step),
                ["cut:<1>aaaaaaa", "<2>ok", "cut:<3>bbbbbbb", "<4>after"],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_garbled_count_drops_only_its_line() {
        assert_eq!(
            frames(b"12x <1>no\n99999999999 <2>no\n<3>yes\n", 64, 4),
            ["bad", "bad", "<3>yes"]
        );
    }

    #[test]
    fn random_streams_never_panic_and_stay_bounded() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let input: Vec<u8> = (0..(next() % 400))
                .map(|_| b"0123 <>\nab\0"[(next() % 11) as usize])
                .collect();
            let _ = frames(&input, 1 + (next() % 40) as usize, 1 + (next() % 9) as usize);
        }
    }
}
