//! Reading: a reader with bytes put back in front (what sniffing read), and
//! a line reader with a length cap.

use std::io::{self, BufRead, Read};

/// `inner` with `pre` in front of it: sniffing reads ahead, then the parser
/// starts from the first byte.
pub(crate) struct Prefixed<R> {
    pre: Vec<u8>,
    pos: usize,
    inner: R,
    inner_eof: bool,
}

impl<R: BufRead> Prefixed<R> {
    pub(crate) fn new(inner: R) -> Prefixed<R> {
        Prefixed {
            pre: Vec::new(),
            pos: 0,
            inner,
            inner_eof: false,
        }
    }

    /// The bytes read ahead so far.
    pub(crate) fn ahead(&self) -> &[u8] {
        self.pre.get(self.pos..).unwrap_or_default()
    }

    /// Reads one more piece of the inner reader into the look-ahead (at
    /// most `limit` bytes held). Returns false at end of input or when the
    /// look-ahead is full.
    pub(crate) fn read_ahead(&mut self, limit: usize) -> io::Result<bool> {
        if self.inner_eof || self.ahead().len() >= limit {
            return Ok(false);
        }
        let room = limit - self.ahead().len();
        let chunk = loop {
            match self.inner.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if chunk.is_empty() {
            self.inner_eof = true;
            return Ok(false);
        }
        let take = chunk.len().min(room);
        self.pre
            .extend_from_slice(chunk.get(..take).unwrap_or_default());
        self.inner.consume(take);
        Ok(true)
    }
}

impl<R: BufRead> Read for Prefixed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Prefixed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.pre.len() {
            return Ok(self.pre.get(self.pos..).unwrap_or_default());
        }
        if self.inner_eof {
            return Ok(&[]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.pre.len() {
            self.pos = self.pos.saturating_add(amt).min(self.pre.len());
            if self.pos == self.pre.len() {
                self.pre = Vec::new();
                self.pos = 0;
            }
        } else if !self.inner_eof {
            self.inner.consume(amt);
        }
    }
}

/// One line read by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line is in the buffer, without its line ending (a last line
    /// without one counts too).
    Complete,
    /// The line was longer than the cap: it was skipped; its length.
    TooLong(u64),
    /// No more input.
    Eof,
}

/// Reads one line into `buf` (cleared first), keeping at most `max` bytes;
/// a longer line is consumed to its end and reported as
/// [`Line::TooLong`]. Returns as soon as the line's `\n` arrives.
pub(crate) fn read_line(src: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    // The line ending (CRLF) does not count against the cap.
    let keep = max.saturating_add(2);
    let mut total: u64 = 0;
    loop {
        let avail = match src.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (piece, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (avail.get(..i + 1).unwrap_or_default(), true),
            None => (avail, false),
        };
        let used = piece.len();
        if used == 0 && total == 0 {
            return Ok(Line::Eof);
        }
        total = total.saturating_add(used as u64);
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(piece.get(..used.min(room)).unwrap_or_default());
        let overflow = total > buf.len() as u64;
        src.consume(used);
        if done || used == 0 {
            strip_eol(buf);
            if overflow || buf.len() > max {
                buf.clear();
                return Ok(Line::TooLong(total));
            }
            return Ok(Line::Complete);
        }
    }
}

fn strip_eol(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut src = io::BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let l = read_line(&mut src, &mut buf, max).unwrap();
            if l == Line::Eof {
                return out;
            }
            out.push((l, buf.clone()));
        }
    }

    #[test]
    fn lines_with_endings_and_caps() {
        let got = lines(b"ab\r\ncdefgh\n\nxyz", 4);
        assert_eq!(
            got,
            vec![
                (Line::Complete, b"ab".to_vec()),
                (Line::TooLong(7), vec![]),
                (Line::Complete, vec![]),
                (Line::Complete, b"xyz".to_vec()),
            ]
        );
        // Exactly at the cap is fine; one over is not.
        assert_eq!(
            lines(b"abcd\n", 4),
            vec![(Line::Complete, b"abcd".to_vec())]
        );
        assert_eq!(lines(b"abcde", 4), vec![(Line::TooLong(5), vec![])]);
    }

    #[test]
    fn prefixed_replays_read_ahead() {
        let mut p = Prefixed::new(io::BufReader::with_capacity(2, &b"hello\nworld\n"[..]));
        assert!(p.read_ahead(3).unwrap());
        assert!(p.read_ahead(3).unwrap());
        assert!(!p.read_ahead(3).unwrap());
        assert_eq!(p.ahead(), b"hel");
        let mut s = String::new();
        p.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\nworld\n");
    }
}
