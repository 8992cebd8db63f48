//! HTTP/2 frame layout (RFC 9113 §4.1, §6).

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const HEADER_LEN: usize = 9;

/// Initial SETTINGS_MAX_FRAME_SIZE, and the smallest allowed.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Largest SETTINGS_MAX_FRAME_SIZE allowed (2^24 - 1).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;

pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream id, reserved bit cleared.
    pub stream: u32,
    /// The reserved bit was set (must be ignored, RFC 9113 §4.1).
    pub reserved: bool,
}

impl FrameHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> FrameHeader {
        let len = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let raw = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        FrameHeader {
            len,
            kind: b[3],
            flags: b[4],
            stream: raw & 0x7fff_ffff,
            reserved: raw & 0x8000_0000 != 0,
        }
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Whether this header is what a well-behaved peer sends, strictly
    /// (used to find frame boundaries when starting mid-connection; never
    /// to reject frames once in sync). `from_client`: the direction.
    pub fn plausible(&self, from_client: bool, max_len: u32) -> bool {
        use kind::*;
        if self.reserved || self.len > max_len {
            return false;
        }
        let s = self.stream;
        let f = self.flags;
        match self.kind {
            DATA => s != 0 && f & !(flag::END_STREAM | flag::PADDED) == 0,
            HEADERS => {
                s != 0
                    && (!from_client || s % 2 == 1)
                    && f & !(flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY)
                        == 0
            }
            PRIORITY => s != 0 && self.len == 5 && f == 0,
            RST_STREAM => s != 0 && self.len == 4 && f == 0,
            SETTINGS => {
                s == 0
                    && f & !flag::ACK == 0
                    && self.len.is_multiple_of(6)
                    && (f == 0 || self.len == 0)
            }
            PUSH_PROMISE => {
                !from_client
                    && s != 0
                    && self.len >= 4
                    && f & !(flag::END_HEADERS | flag::PADDED) == 0
            }
            PING => s == 0 && self.len == 8 && f & !flag::ACK == 0,
            GOAWAY => s == 0 && self.len >= 8 && f == 0,
            WINDOW_UPDATE => self.len == 4 && f == 0,
            CONTINUATION => s != 0 && f & !flag::END_HEADERS == 0,
            _ => false,
        }
    }
}

/// Splits a padded payload (RFC 9113 §6.1): the content between the pad
/// length byte (and `skip` more bytes) and the padding. `None` when the
/// padding does not fit.
pub fn unpad(payload: &[u8], padded: bool, skip: usize) -> Option<&[u8]> {
    let (pad, rest) = if padded {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    let rest = rest.get(skip..)?;
    let end = rest.len().checked_sub(pad)?;
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parse_clears_reserved_bit() {
        let h = FrameHeader::parse(&[0, 0x40, 0x01, 1, 0x25, 0x80, 0, 0, 3]);
        assert_eq!(h.len, 0x4001);
        assert_eq!(h.kind, kind::HEADERS);
        assert!(h.has(flag::END_STREAM) && h.has(flag::END_HEADERS) && h.has(flag::PRIORITY));
        assert!(!h.has(flag::PADDED));
        assert_eq!(h.stream, 3);
        assert!(h.reserved);
    }

    #[test]
    fn unpad_checks_lengths() {
        assert_eq!(unpad(b"abc", false, 0), Some(&b"abc"[..]));
        assert_eq!(unpad(b"\x02abcXX", true, 0), Some(&b"abc"[..]));
        assert_eq!(unpad(b"\x02abcXX", true, 1), Some(&b"bc"[..]));
        assert_eq!(unpad(b"\x05abc", true, 0), None);
        assert_eq!(unpad(b"", true, 0), None);
        assert_eq!(unpad(b"\x00ab", true, 5), None);
        assert_eq!(unpad(b"\x03abc", true, 0), Some(&b""[..]));
    }

    #[test]
    fn plausibility_follows_frame_rules() {
        let h = |len, kind, flags, stream| FrameHeader {
            len,
            kind,
            flags,
            stream,
            reserved: false,
        };
        assert!(h(6, kind::SETTINGS, 0, 0).plausible(true, 16384));
        assert!(!h(7, kind::SETTINGS, 0, 0).plausible(true, 16384));
        assert!(!h(6, kind::SETTINGS, 1, 0).plausible(true, 16384));
        assert!(h(10, kind::HEADERS, 5, 1).plausible(true, 16384));
        assert!(!h(10, kind::HEADERS, 5, 2).plausible(true, 16384));
        assert!(!h(10, kind::PUSH_PROMISE, 4, 1).plausible(true, 16384));
        assert!(!h(20000, kind::DATA, 0, 1).plausible(true, 16384));
        assert!(!h(0, 0x42, 0, 0).plausible(false, 16384));
        assert!(h(8, kind::PING, 1, 0).plausible(false, 16384));
    }
}
