//! Streaming reader for pcap, pcapng and gzip-compressed captures.
//!
//! Reading comes in two halves so that several threads can share one read
//! of a capture: a [`ChunkReader`] reads the (decompressed) bytes into
//! [`Chunk`]s that hold whole blocks only, checking every block's length
//! against the limit before reading towards it, and a [`BlockParser`] turns
//! the blocks of a chunk into [`Packet`]s that borrow the chunk. A
//! [`CaptureReader`] runs both on one thread; [`CaptureReader::into_parts`]
//! hands them out, so that one thread reads while every worker parses the
//! same chunks in place.

use std::fs::File;
use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;
use pcap_parser::nom;
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block, OptionCode};
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, LegacyPcapBlock, PcapError,
};
use shadowmcp_exchange::Timestamp;

use crate::error::CaptureError;
use crate::LinkType;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
/// Smallest legal section header block: header, byte-order magic, versions,
/// section length, trailing length.
const SHB_MIN_LEN: u32 = 28;
/// Smallest pcapng block: type, length and trailing length.
const NG_MIN_LEN: u32 = 12;

/// Limits of a [`CaptureReader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Largest block (pcapng block or pcap record with its header) accepted;
    /// a chunk grows up to this to hold one. Default: 256 MiB.
    pub max_block_size: usize,
    /// Size of a [`Chunk`], i.e. of one read. Default: 1 MiB (fewer, larger
    /// reads: 64 KiB cost ~10 % of a one-thread scan in read calls).
    pub initial_buffer_size: usize,
    /// Total bytes of pcapng Decryption Secrets Blocks kept for
    /// [`CaptureReader::take_decryption_secrets`]; later ones are counted in
    /// [`ReaderStats::secrets_dropped`]. Default: 16 MiB.
    pub max_secrets_bytes: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_block_size: 256 << 20,
            initial_buffer_size: 1 << 20,
            max_secrets_bytes: 16 << 20,
        }
    }
}

/// Container format detected from the input's magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap { big_endian: bool, nanosecond: bool },
    /// pcapng (byte order may change per section).
    PcapNg,
}

/// One packet of a capture, borrowed from the reader's buffer until the next
/// call to [`CaptureReader::next_packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub linktype: LinkType,
    /// Captured bytes (possibly fewer than `orig_len`: snaplen).
    pub data: &'a [u8],
    /// Length of the packet on the wire (never less than `data.len()`).
    pub orig_len: u32,
    /// 1-based index of the packet in the capture.
    pub number: u64,
}

/// Contents of one pcapng Decryption Secrets Block (e.g. a TLS key log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptionSecrets {
    /// Secrets type (`0x544c534b` = TLS key log).
    pub secrets_type: u32,
    pub data: Vec<u8>,
}

/// Container-level counters of a [`CaptureReader`] (of its [`BlockParser`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Packets returned.
    pub packets: u64,
    /// Bytes of the (decompressed) capture parsed so far, file header and
    /// block headers included: the position in the input.
    pub bytes: u64,
    /// pcapng sections seen.
    pub sections: u64,
    /// pcapng interfaces described.
    pub interfaces: u64,
    /// pcapng blocks that carry no packet and were skipped (statistics, name
    /// resolution, custom, unknown…), decryption secrets included.
    pub blocks_skipped: u64,
    /// Decryption Secrets Blocks seen.
    pub secrets_blocks: u64,
    /// Decryption Secrets Blocks dropped because of `max_secrets_bytes`.
    pub secrets_dropped: u64,
    /// Packet blocks naming an interface that was never described (skipped).
    pub unknown_interface: u64,
    /// Interfaces with an invalid `if_tsresol` (microseconds assumed).
    pub bad_tsresol: u64,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
    /// Capture length limit; 0 means none.
    snaplen: u32,
}

/// How blocks are delimited in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Classic pcap records: a header of `header_len` bytes (24 in the
    /// "modified" format) with the captured length at byte 8.
    Pcap { big_endian: bool, header_len: usize },
    /// pcapng blocks, in the byte order of the current section.
    PcapNg { big_endian: bool },
}

impl Framing {
    /// Full length of the block that starts `data`, read from its header;
    /// `Ok(None)` while the header is incomplete. A section header sets the
    /// byte order of the blocks after it.
    fn block_len(&mut self, data: &[u8]) -> Result<Option<u64>, String> {
        match *self {
            Framing::Pcap {
                big_endian,
                header_len,
            } => {
                Ok(u32_at(data, 8, big_endian).map(|caplen| header_len as u64 + u64::from(caplen)))
            }
            Framing::PcapNg { ref mut big_endian } => {
                let Some(kind) = u32_at(data, 0, false) else {
                    return Ok(None);
                };
                if kind == PCAPNG_SHB {
                    // The type reads the same in both orders; the
                    // byte-order magic says which one the section uses.
                    *big_endian = match u32_at(data, 8, false) {
                        None => return Ok(None),
                        Some(PCAPNG_BOM) => false,
                        Some(v) if v.swap_bytes() == PCAPNG_BOM => true,
                        Some(_) => {
                            return Err(
                                "section header block has an invalid byte-order magic".to_string()
                            )
                        }
                    };
                }
                let Some(len) = u32_at(data, 4, *big_endian) else {
                    return Ok(None);
                };
                let min = if kind == PCAPNG_SHB {
                    SHB_MIN_LEN
                } else {
                    NG_MIN_LEN
                };
                if len < min || len % 4 != 0 {
                    return Err(format!("block length {len} is invalid"));
                }
                Ok(Some(u64::from(len)))
            }
        }
    }
}

/// Whole blocks of a capture, as read by a [`ChunkReader`] and parsed by a
/// [`BlockParser`]. Wrapped in an `Arc`, one chunk serves every thread that
/// parses the capture.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Kept at its full length (initialised) so a reused buffer needs no
    /// zeroing; only `..end` is the chunk.
    buf: Vec<u8>,
    end: usize,
    offset: u64,
}

impl Chunk {
    /// Offset of the chunk's first byte in the (decompressed) input.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of whole blocks in the chunk.
    pub fn len(&self) -> usize {
        self.end
    }

    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Bytes of the chunk's buffer (at least [`Chunk::len`]): the memory it
    /// holds.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// The whole blocks, as read.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.end).unwrap_or_default()
    }

    /// The chunk's buffer, to be handed to [`ChunkReader::next_chunk`] again
    /// (no allocation or page faults for the next chunk).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The packet `at` points to; `at` must come from a [`BlockParser`]
    /// reading this chunk (another chunk's packet comes out empty).
    pub fn packet(&self, at: PacketAt) -> Packet<'_> {
        let data = at
            .start
            .checked_add(at.len)
            .and_then(|end| self.buf.get(at.start..end.min(self.end)))
            .unwrap_or_default();
        Packet {
            ts: at.ts,
            linktype: at.linktype,
            data,
            orig_len: at.orig_len,
            number: at.number,
        }
    }

    /// The part of the chunk from `pos` on, as a chunk of its own.
    fn rest(self, pos: usize) -> Chunk {
        if pos == 0 {
            return self;
        }
        let buf = self.buf.get(pos..self.end).unwrap_or_default().to_vec();
        Chunk {
            end: buf.len(),
            buf,
            offset: self.offset + pos as u64,
        }
    }
}

/// Where a packet lies in a [`Chunk`] and what it is: what
/// [`BlockParser::next_packet`] returns, turned into a [`Packet`] by
/// [`Chunk::packet`]. (A plain value, so the caller can let go of the chunk
/// when it holds no more packets.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketAt {
    start: usize,
    len: usize,
    ts: Timestamp,
    linktype: LinkType,
    orig_len: u32,
    number: u64,
}

/// Why a [`ChunkReader`] stops reading, reported after the whole blocks
/// before the point where it stopped.
#[derive(Debug)]
enum Stop {
    Io(io::Error),
    Bad(CaptureError),
}

/// Reads a capture's bytes into [`Chunk`]s of whole blocks. It checks every
/// block's declared length (against [`ReaderConfig::max_block_size`] before
/// reading towards it) but parses nothing: see [`BlockParser`].
pub struct ChunkReader {
    input: String,
    source: Box<dyn Read + Send>,
    gzip: bool,
    /// The input is a regular file (read at the disk's or page cache's
    /// pace, never waiting for a writer).
    file: bool,
    framing: Framing,
    max_block_size: usize,
    chunk_size: usize,
    /// Bytes read past the last whole block, the start of the next chunk.
    carry: Vec<u8>,
    /// Input offset of `carry[0]`.
    offset: u64,
    at_end: bool,
    stop: Option<Stop>,
    finished: bool,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("input", &self.input)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl ChunkReader {
    /// Input name as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Bytes a chunk is read in ([`ReaderConfig::initial_buffer_size`],
    /// within the limits); a chunk grows past it only to hold a larger block.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The next whole blocks, read into `buffer` (any vector, usually one
    /// from [`Chunk::into_buffer`]); `Ok(None)` at the end of the input.
    ///
    /// Errors come after the whole blocks before them, and finish the
    /// reader. A [`CaptureError::Truncated`] from here says
    /// `packets_read: 0`, since blocks are not parsed here: see
    /// [`CaptureError::with_packets_read`].
    pub fn next_chunk(&mut self, buffer: Vec<u8>) -> Result<Option<Chunk>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let mut buf = buffer;
        let mut filled = self.carry.len();
        if buf.len() < self.chunk_size.max(filled) {
            buf.resize(self.chunk_size.max(filled), 0);
        }
        buf[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        loop {
            let (end, need) = self.walk(&buf[..filled]);
            if end > 0 {
                self.carry.extend_from_slice(&buf[end..filled]);
                let chunk = Chunk {
                    buf,
                    end,
                    offset: self.offset,
                };
                self.offset += end as u64;
                return Ok(Some(chunk));
            }
            if self.at_end {
                return self.finish(filled);
            }
            // Not one whole block yet: read on, making room for a block
            // larger than the buffer (its length was checked by `walk`) as
            // its bytes arrive, not on its header's word.
            let room = match need {
                Some(len) => usize::try_from(len)
                    .unwrap_or(usize::MAX)
                    .min(buf.len().saturating_mul(2)),
                None => filled.saturating_add(64),
            };
            if room > buf.len() {
                buf.resize(room, 0);
            }
            filled += self.read_into(&mut buf[filled..]);
        }
    }

    /// The length of the whole blocks at the start of `data`, and the
    /// length of the next block when its header is there. A bad header or
    /// an oversized block stops the reader there.
    fn walk(&mut self, data: &[u8]) -> (usize, Option<u64>) {
        let mut pos = 0usize;
        loop {
            let rest = &data[pos..];
            let len = match self.framing.block_len(rest) {
                Ok(Some(len)) => len,
                Ok(None) => return (pos, None),
                Err(reason) => {
                    self.stop(Stop::Bad(CaptureError::Malformed {
                        input: self.input.clone(),
                        offset: self.offset + pos as u64,
                        reason,
                    }));
                    return (pos, None);
                }
            };
            if len > self.max_block_size as u64 {
                self.stop(Stop::Bad(CaptureError::BlockTooLarge {
                    input: self.input.clone(),
                    offset: self.offset + pos as u64,
                    size: len,
                    limit: self.max_block_size as u64,
                }));
                return (pos, None);
            }
            if len > rest.len() as u64 {
                return (pos, Some(len));
            }
            // len <= rest.len(), which is a usize.
            pos += len as usize;
        }
    }

    /// Stops reading: nothing after this point is read or returned.
    fn stop(&mut self, stop: Stop) {
        self.at_end = true;
        self.stop.get_or_insert(stop);
    }

    /// One read (retried when interrupted); 0 at the end of the input or on
    /// an error, which is kept for after the whole blocks.
    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        loop {
            match self.source.read(buf) {
                Ok(0) => {
                    self.at_end = true;
                    return 0;
                }
                Ok(n) => return n.min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.stop(Stop::Io(e));
                    return 0;
                }
            }
        }
    }

    /// The input ended (or reading stopped) with `left` bytes that are not
    /// a whole block.
    fn finish(&mut self, left: usize) -> Result<Option<Chunk>, CaptureError> {
        self.finished = true;
        let truncated = CaptureError::Truncated {
            input: self.input.clone(),
            packets_read: 0,
            offset: self.offset,
        };
        match self.stop.take() {
            Some(Stop::Bad(e)) => Err(e),
            // A cut gzip stream is a truncated capture, not a broken disk.
            Some(Stop::Io(e)) if self.gzip && e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(truncated)
            }
            Some(Stop::Io(source)) => Err(CaptureError::Io {
                input: self.input.clone(),
                source,
            }),
            None if left == 0 => Ok(None),
            None => Err(truncated),
        }
    }
}

/// Turns the blocks of [`Chunk`]s, in input order, into packets, keeping
/// the capture's state: link type, pcapng sections and interfaces,
/// decryption secrets, packet numbers and [`ReaderStats`]. Cloned before
/// the first chunk, one parser per thread reads the same chunks alike.
#[derive(Clone, Debug)]
pub struct BlockParser {
    input: String,
    framing: Framing,
    state: State,
    failed: bool,
}

impl BlockParser {
    /// The next packet of `chunk` from `*pos` on (start at 0), skipping the
    /// blocks that carry none; `Ok(None)` when the chunk holds no more.
    /// After an error the parser returns `Ok(None)` for good.
    pub fn next_packet(
        &mut self,
        chunk: &Chunk,
        pos: &mut usize,
    ) -> Result<Option<PacketAt>, CaptureError> {
        if self.failed {
            return Ok(None);
        }
        let blocks = chunk.bytes();
        while let Some(rest) = blocks.get(*pos..).filter(|r| !r.is_empty()) {
            let at = *pos;
            let fail = |parser: &mut BlockParser, reason: String| {
                parser.failed = true;
                CaptureError::Malformed {
                    input: parser.input.clone(),
                    offset: chunk.offset + at as u64,
                    reason,
                }
            };
            let len = match self.framing.block_len(rest) {
                Ok(Some(len)) if len <= rest.len() as u64 => len as usize,
                Ok(_) => return Err(fail(self, "block runs past its chunk".to_string())),
                Err(reason) => return Err(fail(self, reason)),
            };
            *pos = at + len;
            self.state.stats.bytes = chunk.offset + *pos as u64;
            match self.parse(&rest[..len]) {
                Ok(Step::Skip) => {}
                Ok(Step::Packet(p)) => {
                    self.state.stats.packets += 1;
                    return Ok(Some(PacketAt {
                        start: at + p.start,
                        len: p.len,
                        ts: p.ts,
                        linktype: p.linktype,
                        orig_len: p.orig_len,
                        number: self.state.stats.packets,
                    }));
                }
                Err(reason) => return Err(fail(self, reason)),
            }
        }
        Ok(None)
    }

    /// Container-level counters so far.
    pub fn stats(&self) -> &ReaderStats {
        &self.state.stats
    }

    /// Decryption Secrets Blocks collected so far (pcapng only); drains them.
    pub fn take_decryption_secrets(&mut self) -> Vec<DecryptionSecrets> {
        self.state.secrets_bytes = 0;
        std::mem::take(&mut self.state.secrets)
    }

    /// One whole block.
    fn parse(&mut self, block: &[u8]) -> Result<Step, String> {
        let parsed = match self.framing {
            Framing::Pcap {
                big_endian,
                header_len,
            } => {
                let frame = if header_len == 24 {
                    parse_pcap_frame_modified(block)
                } else if big_endian {
                    parse_pcap_frame_be(block)
                } else {
                    parse_pcap_frame(block)
                };
                frame.map(|(_, b)| self.state.legacy(&b, header_len))
            }
            Framing::PcapNg { big_endian } => {
                let block = if big_endian {
                    parse_block_be(block)
                } else {
                    parse_block_le(block)
                };
                block.map(|(_, b)| self.state.ng_block(b))
            }
        };
        parsed.map_err(|e| match e {
            nom::Err::Incomplete(_) => "block content does not fit its declared length".to_string(),
            nom::Err::Error(e) | nom::Err::Failure(e) => describe_pcap_error(&e),
        })
    }
}

/// A packet's place in its block.
#[derive(Clone, Copy, Debug)]
struct PacketInfo {
    start: usize,
    len: usize,
    ts: Timestamp,
    linktype: LinkType,
    orig_len: u32,
}

enum Step {
    Packet(PacketInfo),
    Skip,
}

/// What the blocks so far said about the capture.
#[derive(Clone, Debug)]
struct State {
    // classic pcap
    linktype: LinkType,
    nanosecond: bool,
    // pcapng
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    secrets: Vec<DecryptionSecrets>,
    secrets_bytes: usize,
    max_secrets_bytes: usize,
    stats: ReaderStats,
}

/// Reads packets from a pcap or pcapng capture, optionally gzip-compressed,
/// from a file, stdin or any reader, without loading it in memory.
///
/// ```
/// use shadowmcp_capture::{CaptureReader, LinkType, writer::PcapWriter};
/// let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
/// w.write_packet(shadowmcp_exchange::Timestamp::from_nanos(1_700_000_000_000_000_000), &[0u8; 60]).unwrap();
/// let bytes = w.into_inner();
///
/// let mut reader = CaptureReader::from_reader("mem.pcap", std::io::Cursor::new(bytes)).unwrap();
/// let p = reader.next_packet().unwrap().unwrap();
/// assert_eq!((p.number, p.data.len(), p.linktype), (1, 60, LinkType::ETHERNET));
/// assert!(reader.next_packet().unwrap().is_none());
/// ```
pub struct CaptureReader {
    format: CaptureFormat,
    chunks: ChunkReader,
    parser: BlockParser,
    chunk: Option<Chunk>,
    pos: usize,
    finished: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("input", &self.chunks.input)
            .field("format", &self.format)
            .field("gzip", &self.chunks.gzip)
            .field("stats", &self.parser.state.stats)
            .finish_non_exhaustive()
    }
}

/// A [`CaptureReader`] taken apart by [`CaptureReader::into_parts`].
#[derive(Debug)]
pub struct CaptureParts {
    /// Reads the rest of the input.
    pub chunks: ChunkReader,
    /// Parses the chunks, from where the reader had got to.
    pub parser: BlockParser,
    /// Blocks already read and not yet parsed, to parse before the
    /// reader's next chunk.
    pub pending: Option<Chunk>,
}

/// Reads until `want` bytes or end of input.
fn read_up_to(r: &mut dyn Read, want: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let target = out.len().saturating_add(want);
    while out.len() < target {
        let mut chunk = [0u8; 4096];
        let n = (target - out.len()).min(chunk.len());
        match r.read(&mut chunk[..n]) {
            Ok(0) => break,
            Ok(got) => out.extend_from_slice(&chunk[..got]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn describe_start(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(8)];
    format!("{}", shown.escape_ascii())
}

impl CaptureReader {
    /// Opens a capture file; `-` reads stdin.
    pub fn open(path: &str) -> Result<CaptureReader, CaptureError> {
        CaptureReader::open_with(path, ReaderConfig::default())
    }

    /// [`CaptureReader::open`] with explicit limits.
    pub fn open_with(path: &str, config: ReaderConfig) -> Result<CaptureReader, CaptureError> {
        if path == "-" {
            return CaptureReader::from_reader_with("-", io::stdin(), config);
        }
        let file = File::open(path).map_err(|source| CaptureError::Io {
            input: path.to_string(),
            source,
        })?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let mut reader = CaptureReader::from_reader_with(path, file, config)?;
        reader.chunks.file = regular;
        Ok(reader)
    }

    /// Whether the input is a regular file opened by path (not standard
    /// input, a pipe or another reader), compressed or not.
    pub fn is_file(&self) -> bool {
        self.chunks.file
    }

    /// Reads a capture from any reader; `name` is used in errors.
    pub fn from_reader(
        name: impl Into<String>,
        reader: impl Read + Send + 'static,
    ) -> Result<CaptureReader, CaptureError> {
        CaptureReader::from_reader_with(name, reader, ReaderConfig::default())
    }

    /// [`CaptureReader::from_reader`] with explicit limits.
    pub fn from_reader_with(
        name: impl Into<String>,
        reader: impl Read + Send + 'static,
        config: ReaderConfig,
    ) -> Result<CaptureReader, CaptureError> {
        let input = name.into();
        let io_err = |source| CaptureError::Io {
            input: input.clone(),
            source,
        };
        let mut inner: Box<dyn Read + Send> = Box::new(reader);
        let mut prefix = Vec::with_capacity(32);
        read_up_to(&mut *inner, 4, &mut prefix).map_err(io_err)?;
        if prefix.is_empty() {
            return Err(CaptureError::Empty { input });
        }
        let mut gzip = false;
        if prefix.starts_with(&[0x1f, 0x8b]) {
            gzip = true;
            let head = std::mem::take(&mut prefix);
            inner = Box::new(MultiGzDecoder::new(Cursor::new(head).chain(inner)));
            read_up_to(&mut *inner, 4, &mut prefix).map_err(|e| CaptureError::NotACapture {
                input: input.clone(),
                reason: format!("not a capture file (corrupt gzip stream: {e})"),
            })?;
            if prefix.is_empty() {
                return Err(CaptureError::Empty { input });
            }
        }
        let not_a_capture = |prefix: &[u8], input: &str| CaptureError::NotACapture {
            input: input.to_string(),
            reason: format!(
                "not a capture file (starts with \"{}\", expected pcap, pcapng or gzip magic)",
                describe_start(prefix)
            ),
        };
        let magic: [u8; 4] = match prefix.get(..4).and_then(|m| m.try_into().ok()) {
            Some(m) => m,
            None => return Err(not_a_capture(&prefix, &input)),
        };
        let pcap = |big_endian, nanosecond| CaptureFormat::Pcap {
            big_endian,
            nanosecond,
        };
        let (format, modified) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (pcap(false, false), false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (pcap(false, true), false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (pcap(true, false), false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (pcap(true, true), false),
            // Kuznetzov's "modified" pcap (little-endian only, as pcap-parser).
            [0x34, 0xcd, 0xb2, 0xa1] => (pcap(false, false), true),
            [0x0a, 0x0d, 0x0d, 0x0a] => (CaptureFormat::PcapNg, false),
            _ => {
                // A few more bytes make the message recognisable.
                let _ = read_up_to(&mut *inner, 4, &mut prefix);
                return Err(not_a_capture(&prefix, &input));
            }
        };
        let truncated_header = |input: &str| CaptureError::Truncated {
            input: input.to_string(),
            packets_read: 0,
            offset: 0,
        };
        let mut chunk_size = config
            .initial_buffer_size
            .clamp(64, config.max_block_size.max(64));
        let mut state = State {
            linktype: LinkType(0),
            nanosecond: false,
            ng_big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp::default(),
            secrets: Vec::new(),
            secrets_bytes: 0,
            max_secrets_bytes: config.max_secrets_bytes,
            stats: ReaderStats::default(),
        };
        let framing;
        let mut offset = 0;
        match format {
            CaptureFormat::Pcap {
                big_endian,
                nanosecond,
            } => {
                read_up_to(&mut *inner, 20, &mut prefix).map_err(io_err)?;
                if prefix.len() < 24 {
                    return Err(truncated_header(&input));
                }
                state.nanosecond = nanosecond;
                state.linktype = LinkType(u32_at(&prefix, 20, big_endian).unwrap_or(0));
                state.stats.bytes = 24;
                framing = Framing::Pcap {
                    big_endian,
                    header_len: if modified { 24 } else { 16 },
                };
                // The file header is read; records follow.
                prefix.clear();
                offset = 24;
            }
            CaptureFormat::PcapNg => {
                read_up_to(&mut *inner, 8, &mut prefix).map_err(io_err)?;
                let big_endian = match u32_at(&prefix, 8, false) {
                    Some(PCAPNG_BOM) => false,
                    Some(v) if v.swap_bytes() == PCAPNG_BOM => true,
                    Some(_) => {
                        return Err(CaptureError::NotACapture {
                            input,
                            reason: "not a capture file (pcapng magic but bad byte-order magic)"
                                .to_string(),
                        })
                    }
                    None => return Err(truncated_header(&input)),
                };
                let len = u32_at(&prefix, 4, big_endian).unwrap_or(0);
                if (len as u64) > config.max_block_size as u64 {
                    return Err(CaptureError::BlockTooLarge {
                        input,
                        offset: 0,
                        size: len.into(),
                        limit: config.max_block_size as u64,
                    });
                }
                if len < SHB_MIN_LEN || len % 4 != 0 {
                    return Err(CaptureError::Malformed {
                        input,
                        offset: 0,
                        reason: format!("section header block length {len} is invalid"),
                    });
                }
                let rest = len as usize - prefix.len();
                read_up_to(&mut *inner, rest, &mut prefix).map_err(io_err)?;
                if prefix.len() < len as usize {
                    return Err(truncated_header(&input));
                }
                chunk_size = chunk_size.max(len as usize);
                // The section header stays in: the parser reads it first.
                framing = Framing::PcapNg { big_endian };
            }
        }
        let chunks = ChunkReader {
            input: input.clone(),
            source: inner,
            gzip,
            file: false,
            framing,
            max_block_size: config.max_block_size,
            chunk_size,
            carry: prefix,
            offset,
            at_end: false,
            stop: None,
            finished: false,
        };
        let parser = BlockParser {
            input,
            framing,
            state,
            failed: false,
        };
        Ok(CaptureReader {
            format,
            chunks,
            parser,
            chunk: None,
            pos: 0,
            finished: false,
        })
    }

    /// Input name as given (path, `-`, or the name passed to `from_reader`).
    pub fn input(&self) -> &str {
        &self.chunks.input
    }

    /// Container format detected.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Whether the input was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.chunks.gzip
    }

    /// Container-level counters so far.
    pub fn stats(&self) -> &ReaderStats {
        self.parser.stats()
    }

    /// Decryption Secrets Blocks collected so far (pcapng only); drains them.
    pub fn take_decryption_secrets(&mut self) -> Vec<DecryptionSecrets> {
        self.parser.take_decryption_secrets()
    }

    /// The next packet; `Ok(None)` at the end of the capture.
    ///
    /// After an error (including the non-fatal [`CaptureError::Truncated`])
    /// the reader is finished and returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let at = loop {
            if let Some(chunk) = &self.chunk {
                match self.parser.next_packet(chunk, &mut self.pos) {
                    Ok(Some(at)) => break at,
                    Ok(None) => {}
                    Err(e) => {
                        self.finished = true;
                        return Err(e);
                    }
                }
            }
            let buffer = self
                .chunk
                .take()
                .map(Chunk::into_buffer)
                .unwrap_or_default();
            self.pos = 0;
            match self.chunks.next_chunk(buffer) {
                Ok(Some(chunk)) => self.chunk = Some(chunk),
                Ok(None) => {
                    self.finished = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.finished = true;
                    return Err(e.with_packets_read(self.parser.stats().packets));
                }
            }
        };
        Ok(self.chunk.as_ref().map(|chunk| chunk.packet(at)))
    }

    /// The reading and parsing halves, to read the capture on one thread
    /// and parse it on others: send every chunk (`pending` first) to every
    /// parsing thread, each with its own clone of `parser`. Packets already
    /// returned are not seen again.
    pub fn into_parts(self) -> CaptureParts {
        let pending = if self.finished {
            None
        } else {
            self.chunk
                .map(|c| c.rest(self.pos))
                .filter(|c| !c.is_empty())
        };
        let mut chunks = self.chunks;
        if self.finished {
            chunks.finished = true;
        }
        CaptureParts {
            chunks,
            parser: self.parser,
            pending,
        }
    }
}

fn describe_pcap_error<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("invalid block ({kind:?})")
        }
        PcapError::HeaderNotRecognized => "unrecognized header".to_string(),
        PcapError::Eof | PcapError::UnexpectedEof | PcapError::Incomplete(_) => {
            "header incomplete".to_string()
        }
        PcapError::BufferTooSmall => "block larger than the read buffer".to_string(),
        PcapError::ReadError => "read error".to_string(),
    }
}

impl State {
    fn legacy(&mut self, b: &LegacyPcapBlock<'_>, header_len: usize) -> Step {
        let frac = i64::from(b.ts_usec);
        let nanos = if self.nanosecond { frac } else { frac * 1000 };
        let ts = Timestamp::from_nanos(
            i64::from(b.ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(nanos),
        );
        Step::Packet(PacketInfo {
            start: header_len,
            len: b.data.len(),
            ts,
            linktype: self.linktype,
            orig_len: b.origlen.max(b.caplen),
        })
    }

    fn ng_block(&mut self, block: Block<'_>) -> Step {
        match block {
            Block::SectionHeader(shb) => {
                self.ng_big_endian = shb.big_endian();
                self.interfaces.clear();
                self.stats.sections += 1;
                Step::Skip
            }
            Block::InterfaceDescription(idb) => {
                let resolution = match ts_resolution(idb.if_tsresol) {
                    Some(r) => r,
                    _ => {
                        self.stats.bad_tsresol += 1;
                        1_000_000
                    }
                };
                // pcap-parser reads if_tsoffset little-endian whatever the
                // section's byte order; read it in the right order here.
                let offset_secs = idb
                    .options
                    .iter()
                    .find(|o| o.code == OptionCode::IfTsoffset)
                    .and_then(|o| o.value().get(..8).and_then(|v| v.try_into().ok()))
                    .map(|b: [u8; 8]| {
                        if self.ng_big_endian {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        }
                    })
                    .unwrap_or(0);
                self.interfaces.push(Interface {
                    linktype: LinkType(u32::from(idb.linktype.0 as u16)),
                    resolution,
                    offset_secs,
                    snaplen: idb.snaplen,
                });
                self.stats.interfaces += 1;
                Step::Skip
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| self.interfaces.get(i).copied())
                else {
                    self.stats.unknown_interface += 1;
                    return Step::Skip;
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = ng_timestamp(units, iface.resolution, iface.offset_secs);
                self.last_ts = ts;
                let caplen = (epb.caplen as usize).min(epb.data.len());
                Step::Packet(PacketInfo {
                    start: 28,
                    len: caplen,
                    ts,
                    linktype: iface.linktype,
                    orig_len: epb.origlen.max(caplen as u32),
                })
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = self.interfaces.first().copied() else {
                    self.stats.unknown_interface += 1;
                    return Step::Skip;
                };
                // SPB data is padded: the original length and the
                // interface's snaplen bound the packet.
                let mut caplen = (spb.origlen as usize).min(spb.data.len());
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Step::Packet(PacketInfo {
                    start: 12,
                    len: caplen,
                    ts: self.last_ts,
                    linktype: iface.linktype,
                    orig_len: spb.origlen.max(caplen as u32),
                })
            }
            Block::DecryptionSecrets(dsb) => {
                self.stats.secrets_blocks += 1;
                self.stats.blocks_skipped += 1;
                let size = (dsb.secrets_len as usize).min(dsb.data.len());
                if self.secrets_bytes.saturating_add(size) <= self.max_secrets_bytes {
                    self.secrets_bytes += size;
                    self.secrets.push(DecryptionSecrets {
                        secrets_type: dsb.secrets_type.0,
                        data: dsb.data[..size].to_vec(),
                    });
                } else {
                    self.stats.secrets_dropped += 1;
                }
                Step::Skip
            }
            _ => {
                self.stats.blocks_skipped += 1;
                Step::Skip
            }
        }
    }
}

/// Units per second of an `if_tsresol` value: 10^n, or 2^n when the high
/// bit is set. (pcap-parser's own helper rejects every power of two.)
fn ts_resolution(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent).filter(|_| exponent < 64)
    }
}

/// pcapng timestamp (units since the epoch at `resolution` units/s, plus
/// `offset_secs`) as a [`Timestamp`], saturating.
fn ng_timestamp(units: u64, resolution: u64, offset_secs: i64) -> Timestamp {
    let resolution = resolution.max(1);
    let secs = i64::try_from(units / resolution).unwrap_or(i64::MAX);
    let frac = u128::from(units % resolution);
    // frac < resolution, so the quotient is below 1e9.
    let nanos = (frac * 1_000_000_000 / u128::from(resolution)) as i64;
    Timestamp::from_nanos(
        secs.saturating_add(offset_secs)
            .saturating_mul(1_000_000_000)
            .saturating_add(nanos),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ng_timestamp_resolutions() {
        assert_eq!(
            ng_timestamp(1_500_000, 1_000_000, 0),
            Timestamp::from_nanos(1_500_000_000)
        );
        assert_eq!(
            ng_timestamp(3, 2, 10),
            Timestamp::from_nanos(11_500_000_000)
        );
        assert_eq!(ng_timestamp(u64::MAX, 1, i64::MAX).as_nanos(), i64::MAX);
    }

    #[test]
    fn tsresol_powers_of_ten_and_two() {
        assert_eq!(ts_resolution(6), Some(1_000_000));
        assert_eq!(ts_resolution(9), Some(1_000_000_000));
        assert_eq!(ts_resolution(0x83), Some(8));
        assert_eq!(ts_resolution(0x80 | 63), Some(1 << 63));
        assert_eq!(ts_resolution(20), None);
        assert_eq!(ts_resolution(0x80 | 64), None);
    }

    #[test]
    fn describe_start_escapes() {
        assert_eq!(describe_start(b"GET / HTTP/1.1"), "GET / HT");
        assert_eq!(describe_start(&[0, 1]), "\\x00\\x01");
    }
}
