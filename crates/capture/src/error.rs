//! Errors of [`CaptureReader`](crate::CaptureReader).

use std::fmt;
use std::io;

/// Why reading a capture stopped.
///
/// [`CaptureError::Truncated`] is a warning: every complete packet before the
/// cut was already returned, and the reader is finished. Every other variant
/// is fatal for the input. [`CaptureError::is_fatal`] tells them apart.
#[derive(Debug)]
pub enum CaptureError {
    /// The input could not be opened or read.
    Io { input: String, source: io::Error },
    /// The input holds no bytes at all.
    Empty { input: String },
    /// The input does not start with a pcap, pcapng or gzip magic number (or
    /// its gzip stream is corrupt).
    NotACapture { input: String, reason: String },
    /// The capture ends in the middle of a packet or block. All complete
    /// packets before it were returned.
    Truncated {
        input: String,
        /// Packets returned before the cut.
        packets_read: u64,
        /// Byte offset (in the decompressed stream) of the incomplete block.
        offset: u64,
    },
    /// A block claims to be larger than the configured limit.
    BlockTooLarge {
        input: String,
        offset: u64,
        size: u64,
        limit: u64,
    },
    /// A block is corrupt (bad length, bad byte-order magic, inconsistent
    /// fields); the rest of the input cannot be framed.
    Malformed {
        input: String,
        offset: u64,
        reason: String,
    },
}

impl CaptureError {
    /// `false` only for [`CaptureError::Truncated`], which callers usually
    /// report as a warning: the packets before it were read normally.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, CaptureError::Truncated { .. })
    }

    /// The same error, saying `packets` were read before it when it is a
    /// [`CaptureError::Truncated`] (a [`ChunkReader`](crate::ChunkReader)
    /// does not count packets; whoever parsed its chunks does).
    pub fn with_packets_read(self, packets: u64) -> CaptureError {
        match self {
            CaptureError::Truncated { input, offset, .. } => CaptureError::Truncated {
                input,
                packets_read: packets,
                offset,
            },
            other => other,
        }
    }

    /// The input name (path, or `-` for stdin) the error is about.
    pub fn input(&self) -> &str {
        match self {
            CaptureError::Io { input, .. }
            | CaptureError::Empty { input }
            | CaptureError::NotACapture { input, .. }
            | CaptureError::Truncated { input, .. }
            | CaptureError::BlockTooLarge { input, .. }
            | CaptureError::Malformed { input, .. } => input,
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io { input, source } => write!(f, "{input}: {source}"),
            CaptureError::Empty { input } => write!(f, "{input}: empty input, not a capture file"),
            CaptureError::NotACapture { input, reason } => write!(f, "{input}: {reason}"),
            CaptureError::Truncated {
                input,
                packets_read,
                offset,
            } => write!(
                f,
                "{input}: capture truncated at byte {offset} (mid-block); {packets_read} complete packets read"
            ),
            CaptureError::BlockTooLarge {
                input,
                offset,
                size,
                limit,
            } => write!(
                f,
                "{input}: block at byte {offset} claims {size} bytes, more than the {limit}-byte limit"
            ),
            CaptureError::Malformed {
                input,
                offset,
                reason,
            } => write!(f, "{input}: malformed capture at byte {offset}: {reason}"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
