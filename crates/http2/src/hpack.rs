//! HPACK (RFC 7541) header block decoding, written for hostile input.
//!
//! Why not a crate: the HPACK crates available (`hpack`, its forks
//! `fluke-hpack`/`loona-hpack`, `httlib-hpack`) decode a whole block into an
//! unbounded list, accept any dynamic table size the peer announces, and
//! have no notion of a table whose older entries are unknown. A passive
//! monitor needs all three: a header-list cap that still keeps the table in
//! sync, a memory cap on the table, and decoding that carries on (marking
//! fields unknown, never guessing) when the capture began mid-connection or
//! a header block was lost.
//!
//! The one table is the connection-lifetime decoding context of one
//! direction. Entries are inserted at the front; indices count from the
//! newest. Entries we may be missing are always the oldest ones, so an index
//! inside the entries we hold is always right, and one past them is unknown
//! rather than an error while [`Decoder::is_lossy`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Table strings are shared: a reference to a table entry costs no copy,
/// so a block of one-byte references to a big entry cannot make decoding
/// slower than linear (only fields that are kept get copied out).
type Bytes = Arc<[u8]>;

/// Size the RFC charges per entry on top of its name and value.
const ENTRY_OVERHEAD: usize = 32;

/// Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols
/// 0..=255 then EOS (256). The code is canonical, so the lengths determine
/// every code (checked against the RFC's codes in the tests).
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
    30, // EOS
];

const EOS: u16 = 256;

/// The static table, for the test encoder.
#[doc(hidden)]
pub const STATIC_TABLE_FOR_TESTS: [(&str, &str); 61] = STATIC_TABLE;

/// Huffman code length of a byte.
pub(crate) fn huffman_len(b: u8) -> u8 {
    HUFFMAN_LENGTHS[usize::from(b)]
}
const MAX_CODE_LEN: usize = 30;

/// The canonical Huffman code, arranged for decoding by length.
pub(crate) struct Huffman {
    /// First code of each length.
    first: [u32; MAX_CODE_LEN + 1],
    /// Number of codes of each length.
    count: [u32; MAX_CODE_LEN + 1],
    /// Index into `symbols` of the first symbol of each length.
    offset: [u32; MAX_CODE_LEN + 1],
    /// Symbols sorted by (length, symbol).
    symbols: [u16; 257],
    /// Code of each symbol, LSB-aligned.
    pub(crate) codes: [u32; 257],
}

pub(crate) fn huffman() -> &'static Huffman {
    static TABLE: OnceLock<Huffman> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut symbols = [0u16; 257];
        for (i, s) in symbols.iter_mut().enumerate() {
            *s = i as u16;
        }
        symbols.sort_by_key(|&s| (HUFFMAN_LENGTHS[usize::from(s)], s));
        let mut h = Huffman {
            first: [0; MAX_CODE_LEN + 1],
            count: [0; MAX_CODE_LEN + 1],
            offset: [0; MAX_CODE_LEN + 1],
            symbols,
            codes: [0; 257],
        };
        let mut code: u32 = 0;
        let mut prev_len = 0u8;
        for (i, &s) in symbols.iter().enumerate() {
            let len = HUFFMAN_LENGTHS[usize::from(s)];
            if i == 0 {
                prev_len = len;
            }
            code <<= len - prev_len;
            prev_len = len;
            let l = usize::from(len);
            if h.count[l] == 0 {
                h.first[l] = code;
                h.offset[l] = i as u32;
            }
            h.count[l] += 1;
            h.codes[usize::from(s)] = code;
            code += 1;
        }
        h
    })
}

/// Decodes a Huffman-coded string (RFC 7541 §5.2), appending to `out`.
pub(crate) fn huffman_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let h = huffman();
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            if len > MAX_CODE_LEN {
                return Err(HpackError::Huffman);
            }
            let n = h.count[len];
            if n > 0 && code >= h.first[len] && code - h.first[len] < n {
                let idx = (h.offset[len] + code - h.first[len]) as usize;
                let sym = h.symbols.get(idx).copied().ok_or(HpackError::Huffman)?;
                if sym == EOS {
                    return Err(HpackError::Huffman);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(())
}

/// Why a header block could not be decoded to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer longer than 32 bits.
    IntegerOverflow,
    /// An index beyond the static and dynamic tables.
    InvalidIndex,
    /// Bad Huffman code, EOS inside a string, or bad padding.
    Huffman,
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HpackError::Truncated => "header block truncated",
            HpackError::IntegerOverflow => "integer overflow",
            HpackError::InvalidIndex => "invalid table index",
            HpackError::Huffman => "invalid Huffman string",
        })
    }
}

/// A decoded header field; `None` parts could not be known (they refer to
/// a table entry from before what this decoder saw).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Limits on one decoded header list. Fields past them are decoded (the
/// table must stay in sync) but not kept.
#[derive(Clone, Copy, Debug)]
pub struct ListLimits {
    /// RFC 9113 header list size (name + value + 32 per field).
    pub max_list_size: usize,
    pub max_fields: usize,
}

/// What one header block decoded to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub fields: Vec<Field>,
    /// Fields decoded but not kept because of [`ListLimits`].
    pub dropped: usize,
    /// Fields with a part that could not be known.
    pub unknown: usize,
    /// Table size updates that broke RFC 7541 §4.2 (not at the block start,
    /// or above the announced setting); applied anyway.
    pub violations: usize,
}

/// A table entry's name (`None`: unknown) and value.
type NameValue = (Option<Bytes>, Bytes);

fn static_table() -> &'static [(Bytes, Bytes)] {
    static TABLE: OnceLock<Vec<(Bytes, Bytes)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        STATIC_TABLE
            .iter()
            .map(|(n, v)| (Bytes::from(n.as_bytes()), Bytes::from(v.as_bytes())))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct Entry {
    name: Option<Bytes>,
    value: Bytes,
}

impl Entry {
    fn size(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len()) + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The decoding context of one direction of a connection.
#[derive(Clone, Debug)]
pub struct Decoder {
    table: VecDeque<Entry>,
    /// Sum of entry sizes.
    size: usize,
    /// Maximum table size in force (set by the encoder's size updates).
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE the decoding side announced: the bound on
    /// size updates.
    allowed: usize,
    /// Memory cap: the table never holds more than this.
    cap: usize,
    /// Older entries may be missing (mid-connection start, lost block, or
    /// the cap cut the table).
    lossy: bool,
}

impl Decoder {
    /// A decoder at connection start, holding at most `cap` bytes of table
    /// (RFC 7541 size). With `cap` below the 4096 the protocol starts with,
    /// or below a size the encoder later takes, references to entries that
    /// did not fit decode as unknown fields instead of failing.
    pub fn new(cap: usize) -> Decoder {
        let mut d = Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            allowed: DEFAULT_TABLE_SIZE,
            cap,
            lossy: false,
        };
        d.clamp_to_cap();
        d
    }

    /// A decoder whose earlier history is unknown (mid-connection).
    pub fn unknown_state(cap: usize) -> Decoder {
        let mut d = Decoder::new(cap);
        d.lossy = true;
        d
    }

    /// Entries older than the ones held may exist.
    pub fn is_lossy(&self) -> bool {
        self.lossy
    }

    /// The state can no longer be trusted past what is held (a block was
    /// lost): keep nothing, treat every old entry as unknown.
    pub fn forget(&mut self) {
        self.table.clear();
        self.size = 0;
        self.lossy = true;
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE `v`.
    pub fn set_allowed(&mut self, v: usize) {
        self.allowed = v;
    }

    /// Bytes of table held (RFC size, a bound on memory).
    pub fn table_size(&self) -> usize {
        self.size
    }

    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    fn clamp_to_cap(&mut self) {
        if self.max_size > self.cap {
            self.max_size = self.cap;
            // Entries the real table keeps may be evicted here.
            self.lossy = true;
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.table.pop_back() {
                Some(e) => self.size = self.size.saturating_sub(e.size()),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it.
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.table.push_front(entry);
    }

    fn size_update(&mut self, new: usize, block: &mut Block, at_start: bool) {
        if !at_start || new > self.allowed {
            block.violations += 1;
        }
        self.max_size = new;
        self.clamp_to_cap();
        self.evict_to(self.max_size);
        if new == 0 {
            // Everything is gone on both sides: the state is known again.
            self.lossy = false;
        }
    }

    /// Entry `index` (1-based, static then dynamic). `Ok(None)`: an entry
    /// we cannot know.
    fn lookup(&self, index: u64) -> Result<Option<NameValue>, HpackError> {
        if index == 0 {
            return Err(HpackError::InvalidIndex);
        }
        let i = usize::try_from(index).map_err(|_| HpackError::InvalidIndex)?;
        if let Some((n, v)) = static_table().get(i - 1) {
            return Ok(Some((Some(n.clone()), v.clone())));
        }
        let d = i - 1 - STATIC_TABLE.len();
        match self.table.get(d) {
            Some(e) => Ok(Some((e.name.clone(), e.value.clone()))),
            None if self.lossy => Ok(None),
            None => Err(HpackError::InvalidIndex),
        }
    }

    /// Decodes one complete header block. On error, `block` holds the
    /// fields decoded before it and the caller should [`Decoder::forget`]
    /// (the rest of the block's table changes are lost).
    pub fn decode(
        &mut self,
        input: &[u8],
        limits: ListLimits,
        block: &mut Block,
    ) -> Result<(), HpackError> {
        let mut pos = 0usize;
        let mut list_size = 0usize;
        let mut at_start = true;
        while pos < input.len() {
            let first = input[pos];
            let (name, value): (Option<Bytes>, Option<Bytes>) = if first & 0x80 != 0 {
                // Indexed field.
                let index = read_int(input, &mut pos, 7)?;
                match self.lookup(index)? {
                    Some((name, value)) => (name, Some(value)),
                    None => (None, None),
                }
            } else if first & 0xe0 == 0x20 {
                let new = read_int(input, &mut pos, 5)?;
                let new = usize::try_from(new).map_err(|_| HpackError::IntegerOverflow)?;
                self.size_update(new, block, at_start);
                continue;
            } else {
                // Literal: with incremental indexing (01), without (0000),
                // never indexed (0001).
                let (prefix, index_it) = if first & 0x40 != 0 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name_index = read_int(input, &mut pos, prefix)?;
                let name = if name_index == 0 {
                    Some(Bytes::from(read_string(input, &mut pos)?))
                } else {
                    self.lookup(name_index)?.and_then(|(n, _)| n)
                };
                let value = Bytes::from(read_string(input, &mut pos)?);
                if index_it {
                    self.insert(Entry {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
                (name, Some(value))
            };
            at_start = false;
            if name.is_none() || value.is_none() {
                block.unknown += 1;
            }
            let size = name.as_ref().map_or(0, |n| n.len())
                + value.as_ref().map_or(0, |v| v.len())
                + ENTRY_OVERHEAD;
            list_size = list_size.saturating_add(size);
            if list_size > limits.max_list_size || block.fields.len() >= limits.max_fields {
                block.dropped += 1;
            } else {
                block.fields.push(Field {
                    name: name.map(|n| n.to_vec()),
                    value: value.map(|v| v.to_vec()),
                });
            }
        }
        Ok(())
    }
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 §5.1); at most 32 bits.
fn read_int(input: &[u8], pos: &mut usize, n: u32) -> Result<u64, HpackError> {
    let first = *input.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let max_prefix = (1u64 << n) - 1;
    let mut value = u64::from(first) & max_prefix;
    if value < max_prefix {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *input.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// Reads a string literal (RFC 7541 §5.2).
fn read_string(input: &[u8], pos: &mut usize) -> Result<Vec<u8>, HpackError> {
    let huffman = input.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(input, pos, 7)?;
    let len = usize::try_from(len).map_err(|_| HpackError::IntegerOverflow)?;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = input.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        let mut out = Vec::with_capacity(len.saturating_mul(8) / 5 + 1);
        huffman_decode(raw, &mut out)?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const NO_LIMIT: ListLimits = ListLimits {
        max_list_size: usize::MAX,
        max_fields: usize::MAX,
    };

    fn decode(d: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut b = Block::default();
        d.decode(&hex(block), NO_LIMIT, &mut b).unwrap();
        assert_eq!(b.unknown, 0);
        b.fields
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.unwrap()).unwrap(),
                    String::from_utf8(f.value.unwrap()).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The dynamic table, newest first, as (name, value, size).
    fn table(d: &Decoder) -> Vec<(String, String)> {
        d.table
            .iter()
            .map(|e| {
                (
                    String::from_utf8(e.name.as_deref().unwrap().to_vec()).unwrap(),
                    String::from_utf8(e.value.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn huffman_code_matches_rfc_codes() {
        let h = huffman();
        // Spot checks against Appendix B (code as hex, LSB-aligned).
        let expect = [
            (0usize, 0x1ff8u32),
            (1, 0x7fffd8),
            (10, 0x3ffffffc),
            (32, 0x14),
            (47, 0x18),
            (48, 0x0),
            (97, 0x3),
            (92, 0x7fff0),
            (127, 0xffffffc),
            (128, 0xfffe6),
            (195, 0x7fff1),
            (220, 0xffffffd),
            (249, 0xffffffe),
            (255, 0x3ffffee),
            (256, 0x3fffffff),
        ];
        for (sym, code) in expect {
            assert_eq!(h.codes[sym], code, "symbol {sym}");
        }
        // A complete prefix code: the Kraft sum is exactly 1.
        let kraft: u64 = HUFFMAN_LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
    }

    #[test]
    fn huffman_rejects_eos_and_bad_padding() {
        let mut out = Vec::new();
        // EOS as a symbol (30 ones then padding).
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HpackError::Huffman)
        );
        // Padding of zeros: 'a' is 00011, then 000 padding.
        out.clear();
        assert_eq!(huffman_decode(&[0x18], &mut out), Err(HpackError::Huffman));
        // 'a' with correct padding 111.
        out.clear();
        huffman_decode(&[0x1f], &mut out).unwrap();
        assert_eq!(out, b"a");
        // Padding longer than 7 bits.
        out.clear();
        assert_eq!(
            huffman_decode(&[0x1f, 0xff], &mut out),
            Err(HpackError::Huffman)
        );
    }

    #[test]
    fn integers_c1_and_overflow() {
        let mut pos = 0;
        assert_eq!(read_int(&[0x0a], &mut pos, 5), Ok(10));
        pos = 0;
        assert_eq!(read_int(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Ok(1337));
        assert_eq!(pos, 3);
        pos = 0;
        assert_eq!(read_int(&[0x2a], &mut pos, 8), Ok(42));
        pos = 0;
        assert_eq!(
            read_int(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, 5),
            Err(HpackError::IntegerOverflow)
        );
        pos = 0;
        assert_eq!(
            read_int(&[0x1f, 0x80], &mut pos, 5),
            Err(HpackError::Truncated)
        );
    }

    #[test]
    fn c2_field_representations() {
        let mut d = Decoder::new(1 << 16);
        assert_eq!(
            decode(
                &mut d,
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"
            ),
            pairs(&[("custom-key", "custom-header")])
        );
        assert_eq!(d.table_size(), 55);
        let mut d = Decoder::new(1 << 16);
        assert_eq!(
            decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468"),
            pairs(&[(":path", "/sample/path")])
        );
        assert_eq!(d.table_len(), 0);
        assert_eq!(
            decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
            pairs(&[("password", "secret")])
        );
        assert_eq!(d.table_len(), 0);
        assert_eq!(decode(&mut d, "82"), pairs(&[(":method", "GET")]));
        assert_eq!(d.table_len(), 0);
    }

    fn requests(blocks: [&str; 3]) {
        let mut d = Decoder::new(1 << 16);
        assert_eq!(
            decode(&mut d, blocks[0]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table_size(), 57);
        assert_eq!(
            decode(&mut d, blocks[1]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        assert_eq!(d.table_size(), 110);
        assert_eq!(
            decode(&mut d, blocks[2]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(
            table(&d),
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table_size(), 164);
    }

    #[test]
    fn c3_requests_without_huffman() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn c4_requests_with_huffman() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    fn responses(blocks: [&str; 3]) {
        let mut d = Decoder::new(1 << 16);
        // SETTINGS_HEADER_TABLE_SIZE 256, taken by the encoder.
        d.set_allowed(256);
        d.max_size = 256;
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let loc = "https://www.example.com";
        assert_eq!(
            decode(&mut d, blocks[0]),
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc)
            ])
        );
        assert_eq!(
            table(&d),
            pairs(&[
                ("location", loc),
                ("date", date1),
                ("cache-control", "private"),
                (":status", "302")
            ])
        );
        assert_eq!(d.table_size(), 222);
        assert_eq!(
            decode(&mut d, blocks[1]),
            pairs(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc)
            ])
        );
        // ":status: 302" was evicted.
        assert_eq!(
            table(&d),
            pairs(&[
                (":status", "307"),
                ("location", loc),
                ("date", date1),
                ("cache-control", "private")
            ])
        );
        assert_eq!(d.table_size(), 222);
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        let date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
        assert_eq!(
            decode(&mut d, blocks[2]),
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", date2),
                ("location", loc),
                ("content-encoding", "gzip"),
                ("set-cookie", cookie)
            ])
        );
        assert_eq!(
            table(&d),
            pairs(&[
                ("set-cookie", cookie),
                ("content-encoding", "gzip"),
                ("date", date2)
            ])
        );
        assert_eq!(d.table_size(), 215);
    }

    #[test]
    fn c5_responses_without_huffman_with_evictions() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman_with_evictions() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn size_update_evicts_and_is_bounded_by_cap() {
        let mut d = Decoder::new(1 << 16);
        decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        );
        assert_eq!(d.table_len(), 1);
        // Size update to 0 (0x20) empties the table.
        let mut b = Block::default();
        d.decode(&hex("20 82"), NO_LIMIT, &mut b).unwrap();
        assert_eq!(d.table_len(), 0);
        assert_eq!(b.violations, 0);
        // An update after a field is a violation, applied anyway.
        let mut b = Block::default();
        d.decode(&hex("82 3fe1 1f"), NO_LIMIT, &mut b).unwrap();
        assert_eq!(b.violations, 1);
        assert_eq!(d.max_size, 4096);
        // Above the cap: clamped, and the table becomes lossy.
        let mut small = Decoder::new(100);
        assert!(small.is_lossy());
        let mut b = Block::default();
        small.decode(&hex("3fe1 1f"), NO_LIMIT, &mut b).unwrap();
        assert!(small.max_size <= 100);
    }

    #[test]
    fn invalid_index_is_an_error_unless_lossy() {
        let mut d = Decoder::new(4096);
        let mut b = Block::default();
        assert_eq!(
            d.decode(&hex("be"), NO_LIMIT, &mut b),
            Err(HpackError::InvalidIndex)
        );
        assert_eq!(
            d.decode(&hex("80"), NO_LIMIT, &mut b),
            Err(HpackError::InvalidIndex)
        );
        let mut lossy = Decoder::unknown_state(4096);
        let mut b = Block::default();
        // Unknown indexed field, then a literal with an unknown name that is
        // inserted, then a reference to that new entry.
        lossy
            .decode(&hex("c5 7f00 0376 616c be"), NO_LIMIT, &mut b)
            .unwrap();
        assert_eq!(b.unknown, 3);
        assert_eq!(b.fields[1].value.as_deref(), Some(&b"val"[..]));
        assert_eq!(b.fields[2].value.as_deref(), Some(&b"val"[..]));
        assert_eq!(b.fields[2].name, None);
        // A size update to 0 makes the state known again.
        lossy
            .decode(&hex("20"), NO_LIMIT, &mut Block::default())
            .unwrap();
        assert!(!lossy.is_lossy());
    }

    #[test]
    fn list_limits_drop_fields_but_keep_the_table_in_sync() {
        let mut d = Decoder::new(4096);
        let mut b = Block::default();
        let limits = ListLimits {
            max_list_size: usize::MAX,
            max_fields: 1,
        };
        d.decode(
            &hex("82 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
            limits,
            &mut b,
        )
        .unwrap();
        assert_eq!(b.fields.len(), 1);
        assert_eq!(b.dropped, 1);
        assert_eq!(d.table_len(), 1);
    }

    #[test]
    fn references_to_a_big_entry_are_not_copied_past_the_limit() {
        let mut d = Decoder::new(1 << 16);
        // One 4000-byte entry, then 100 000 one-byte references to it.
        let mut input = vec![0x40, 0x01, b'x'];
        let mut len = Vec::new();
        encode_len(&mut len, 4000);
        input.extend_from_slice(&len);
        input.extend(std::iter::repeat_n(b'v', 4000));
        input.extend(std::iter::repeat_n(0xbe, 100_000));
        let limits = ListLimits {
            max_list_size: 64 << 10,
            max_fields: 1000,
        };
        let mut b = Block::default();
        d.decode(&input, limits, &mut b).unwrap();
        let kept: usize = b
            .fields
            .iter()
            .map(|f| f.value.as_ref().unwrap().len())
            .sum();
        assert!(kept <= 64 << 10);
        assert_eq!(b.fields.len() + b.dropped, 100_001);
    }

    fn encode_len(out: &mut Vec<u8>, v: usize) {
        // 7-bit prefix, no Huffman.
        if v < 127 {
            out.push(v as u8);
            return;
        }
        out.push(127);
        let mut r = v - 127;
        while r >= 128 {
            out.push((r % 128) as u8 | 0x80);
            r /= 128;
        }
        out.push(r as u8);
    }

    #[test]
    fn truncated_strings_are_errors() {
        let mut d = Decoder::new(4096);
        let mut b = Block::default();
        assert_eq!(
            d.decode(&hex("400a 6375"), NO_LIMIT, &mut b),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&hex("40"), NO_LIMIT, &mut b),
            Err(HpackError::Truncated)
        );
    }
}
