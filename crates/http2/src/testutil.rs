//! Encoders for tests and benches: HTTP/2 frames and HPACK header blocks.
//! Not part of the supported API.

use std::collections::VecDeque;

use crate::hpack::huffman;

pub use crate::frame::{flag, kind, PREFACE};

/// One frame: header and payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A payload with a pad length byte in front and `pad` zero bytes after.
pub fn padded(payload: &[u8], pad: u8) -> Vec<u8> {
    let mut p = vec![pad];
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    p
}

/// A SETTINGS payload.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// An integer with an `n`-bit prefix; `first` holds the representation's
/// high bits.
pub fn encode_int(out: &mut Vec<u8>, n: u32, first: u8, value: u64) {
    let max = (1u64 << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut v = value - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

pub fn huffman_encode(data: &[u8]) -> Vec<u8> {
    let h = huffman();
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in data {
        let code = u64::from(h.codes[usize::from(b)]);
        let len = u32::from(crate::hpack::huffman_len(b));
        acc = (acc << len) | code;
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
    out
}

fn encode_string(out: &mut Vec<u8>, s: &[u8], use_huffman: bool) {
    if use_huffman {
        let h = huffman_encode(s);
        encode_int(out, 7, 0x80, h.len() as u64);
        out.extend_from_slice(&h);
    } else {
        encode_int(out, 7, 0, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// A simple HPACK encoder that uses the dynamic table: exact matches are
/// indexed, other fields are added to the table (names found in a table
/// are referenced), `never_index` names are sent never-indexed.
pub struct HpackEncoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    pending_update: Option<usize>,
    pub huffman: bool,
}

const STATIC: [(&str, &str); 61] = crate::hpack::STATIC_TABLE_FOR_TESTS;

impl HpackEncoder {
    pub fn new(huffman: bool) -> HpackEncoder {
        HpackEncoder {
            table: VecDeque::new(),
            size: 0,
            max_size: 4096,
            pending_update: None,
            huffman,
        }
    }

    /// Changes the table size; the update goes at the start of the next
    /// block.
    pub fn set_max_size(&mut self, size: usize) {
        self.max_size = size;
        self.evict(size);
        self.pending_update = Some(size);
    }

    fn evict(&mut self, limit: usize) {
        while self.size > limit {
            if let Some((n, v)) = self.table.pop_back() {
                self.size -= n.len() + v.len() + 32;
            }
        }
    }

    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_idx = None;
        for (i, (n, v)) in STATIC.iter().enumerate() {
            if n.as_bytes() == name {
                if v.as_bytes() == value {
                    return (Some(i + 1), Some(i + 1));
                }
                name_idx.get_or_insert(i + 1);
            }
        }
        for (i, (n, v)) in self.table.iter().enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 62), Some(i + 62));
                }
                name_idx.get_or_insert(i + 62);
            }
        }
        (None, name_idx)
    }

    pub fn encode(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(size) = self.pending_update.take() {
            encode_int(&mut out, 5, 0x20, size as u64);
        }
        for (name, value) in fields {
            let (name, value) = (name.as_bytes(), value.as_bytes());
            let (exact, name_idx) = self.find(name, value);
            if let Some(i) = exact {
                encode_int(&mut out, 7, 0x80, i as u64);
                continue;
            }
            let never = name == b"authorization" || name == b"cookie";
            let (n, first) = if never { (4, 0x10) } else { (6, 0x40) };
            encode_int(&mut out, n, first, name_idx.unwrap_or(0) as u64);
            if name_idx.is_none() {
                encode_string(&mut out, name, self.huffman);
            }
            encode_string(&mut out, value, self.huffman);
            if !never {
                let size = name.len() + value.len() + 32;
                if size > self.max_size {
                    self.evict(0);
                } else {
                    self.evict(self.max_size - size);
                    self.size += size;
                    self.table.push_front((name.to_vec(), value.to_vec()));
                }
            }
        }
        out
    }
}
