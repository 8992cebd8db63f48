//! Streaming reader for pcap, pcapng and gzip-compressed captures.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::{Block, OptionCode};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use shadowmcp_exchange::Timestamp;

use crate::error::CaptureError;
use crate::LinkType;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
/// Smallest legal section header block: header, byte-order magic, versions,
/// section length, trailing length.
const SHB_MIN_LEN: u32 = 28;

/// Limits of a [`CaptureReader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Largest block (pcapng block or pcap record with its header) accepted;
    /// the read buffer grows up to this. Default: 256 MiB.
    pub max_block_size: usize,
    /// Initial read-buffer size. Default: 1 MiB (fewer, larger reads: 64 KiB
    /// cost ~10 % of a one-thread scan in read calls and buffer shifts).
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

/// Container-level counters of a [`CaptureReader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Packets returned.
    pub packets: u64,
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

/// Format-specific parsing state, kept apart from the pcap-parser reader so
/// both can be borrowed at once.
#[derive(Debug)]
struct State {
    // classic pcap
    linktype: LinkType,
    nanosecond: bool,
    big_endian: bool,
    record_header_len: usize,
    // pcapng
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    secrets: Vec<DecryptionSecrets>,
    secrets_bytes: usize,
    max_secrets_bytes: usize,
    stats: ReaderStats,
}

/// A packet's place in the read buffer, computed while the block is
/// borrowed and used after the borrow ends.
#[derive(Clone, Copy, Debug)]
struct PacketInfo {
    block_len: usize,
    start: usize,
    len: usize,
    ts: Timestamp,
    linktype: LinkType,
    orig_len: u32,
}

enum Step {
    Packet(PacketInfo),
    Skip(usize),
    Refill,
    Grow,
    Cut,
    End,
    Bad(String),
}

/// Wraps the input: retries interrupted reads and turns a read error into
/// end of input, keeping the error for the reader to report after it has
/// returned every complete packet read before it.
struct Input {
    inner: Box<dyn Read + Send>,
    error: Arc<Mutex<Option<io::Error>>>,
    failed: bool,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = true;
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    return Ok(0);
                }
            }
        }
    }
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
    input: String,
    /// Set when the capture is a plain (uncompressed) file opened by path.
    path: Option<String>,
    format: CaptureFormat,
    gzip: bool,
    max_block_size: usize,
    capacity: usize,
    reader: Box<dyn PcapReaderIterator + Send>,
    io_error: Arc<Mutex<Option<io::Error>>>,
    pending_consume: usize,
    finished: bool,
    state: State,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("input", &self.input)
            .field("format", &self.format)
            .field("gzip", &self.gzip)
            .field("stats", &self.state.stats)
            .finish_non_exhaustive()
    }
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
        if regular && !reader.gzip {
            reader.path = Some(path.to_string());
        }
        Ok(reader)
    }

    /// The path of a plain capture file, which can be opened again and read
    /// independently (several readers of one file); `None` for standard
    /// input, gzip-compressed captures and other readers.
    pub fn reopenable_path(&self) -> Option<&str> {
        self.path.as_deref()
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
        let mut capacity = config
            .initial_buffer_size
            .clamp(64, config.max_block_size.max(64));
        let mut state = State {
            linktype: LinkType(0),
            nanosecond: false,
            big_endian: false,
            record_header_len: if modified { 24 } else { 16 },
            ng_big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp::default(),
            secrets: Vec::new(),
            secrets_bytes: 0,
            max_secrets_bytes: config.max_secrets_bytes,
            stats: ReaderStats::default(),
        };
        match format {
            CaptureFormat::Pcap {
                big_endian,
                nanosecond,
            } => {
                read_up_to(&mut *inner, 20, &mut prefix).map_err(io_err)?;
                if prefix.len() < 24 {
                    return Err(truncated_header(&input));
                }
                state.big_endian = big_endian;
                state.nanosecond = nanosecond;
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
                capacity = capacity.max(len as usize);
            }
        }
        let io_error = Arc::new(Mutex::new(None));
        let source = Input {
            inner: Box::new(Cursor::new(prefix).chain(inner)),
            error: Arc::clone(&io_error),
            failed: false,
        };
        let built: Result<Box<dyn PcapReaderIterator + Send>, String> = match format {
            CaptureFormat::Pcap { .. } => LegacyPcapReader::new(capacity, source)
                .map(|r| Box::new(r) as Box<dyn PcapReaderIterator + Send>)
                .map_err(|e| describe_pcap_error(&e)),
            CaptureFormat::PcapNg => PcapNGReader::new(capacity, source)
                .map(|r| Box::new(r) as Box<dyn PcapReaderIterator + Send>)
                .map_err(|e| describe_pcap_error(&e)),
        };
        let reader = built.map_err(|reason| CaptureError::Malformed {
            input: input.clone(),
            offset: 0,
            reason,
        })?;
        Ok(CaptureReader {
            input,
            path: None,
            format,
            gzip,
            max_block_size: config.max_block_size,
            capacity,
            reader,
            io_error,
            pending_consume: 0,
            finished: false,
            state,
        })
    }

    /// Input name as given (path, `-`, or the name passed to `from_reader`).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Container format detected.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Whether the input was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
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

    /// The next packet; `Ok(None)` at the end of the capture.
    ///
    /// After an error (including the non-fatal [`CaptureError::Truncated`])
    /// the reader is finished and returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        if self.pending_consume > 0 {
            // No shift here: `consume` moves the unread half of the buffer
            // to its start whenever the position passes the middle (a
            // second copy of half the input); `refill` shifts the few
            // bytes left when it is needed.
            self.reader.consume_noshift(self.pending_consume);
            self.pending_consume = 0;
        }
        let info = loop {
            match self.step() {
                Step::Packet(info) => break info,
                Step::Skip(n) => self.reader.consume_noshift(n),
                Step::Refill => {
                    // Refuse an oversized block before reading towards it.
                    self.check_block_limit()?;
                    let before = self.reader.data().len();
                    if self.reader.refill().is_err() {
                        return self.finish_at_end();
                    }
                    if self.reader.data().len() == before && !self.reader.reader_exhausted() {
                        // Buffer full and the block still incomplete.
                        self.grow()?;
                    }
                }
                Step::Grow => self.grow()?,
                Step::Cut => return self.finish_cut(),
                Step::End => return self.finish_at_end(),
                Step::Bad(reason) => return Err(self.fail_malformed(reason)),
            }
        };
        self.pending_consume = info.block_len;
        let end = info.start.saturating_add(info.len);
        if self.reader.data().len() < end {
            return Err(self.fail_malformed("packet data outside its block".to_string()));
        }
        self.state.stats.packets += 1;
        let data = self.reader.data().get(info.start..end).unwrap_or_default();
        Ok(Some(Packet {
            ts: info.ts,
            linktype: info.linktype,
            data,
            orig_len: info.orig_len,
            number: self.state.stats.packets,
        }))
    }

    fn offset(&self) -> u64 {
        self.reader.consumed() as u64
    }

    fn fail_malformed(&mut self, reason: String) -> CaptureError {
        self.finished = true;
        CaptureError::Malformed {
            input: self.input.clone(),
            offset: self.offset(),
            reason,
        }
    }

    /// A read error stashed by [`Input`], as the error to report.
    fn take_io_error(&mut self) -> Option<CaptureError> {
        let err = self.io_error.lock().ok()?.take()?;
        // A cut gzip stream is a truncated capture, not a broken disk.
        if self.gzip && err.kind() == io::ErrorKind::UnexpectedEof {
            return Some(self.truncated());
        }
        Some(CaptureError::Io {
            input: self.input.clone(),
            source: err,
        })
    }

    fn truncated(&self) -> CaptureError {
        CaptureError::Truncated {
            input: self.input.clone(),
            packets_read: self.state.stats.packets,
            offset: self.offset(),
        }
    }

    fn finish_at_end(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        self.finished = true;
        match self.take_io_error() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Input ended with bytes left that do not form a complete block.
    fn finish_cut(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        self.finished = true;
        if let Some(e) = self.take_io_error() {
            return Err(e);
        }
        let available = self.reader.data().len() as u64;
        if available == 0 {
            return Ok(None);
        }
        match self.declared_block_len() {
            Some(need) if need <= available => {
                Err(self
                    .fail_malformed("block content does not fit its declared length".to_string()))
            }
            _ => Err(self.truncated()),
        }
    }

    /// Length the block at the buffer's start claims, from its header.
    fn declared_block_len(&self) -> Option<u64> {
        let data = self.reader.data();
        match self.format {
            CaptureFormat::Pcap { .. } => {
                let caplen = u32_at(data, 8, self.state.big_endian)?;
                Some(self.state.record_header_len as u64 + u64::from(caplen))
            }
            CaptureFormat::PcapNg => {
                let big_endian = if u32_at(data, 0, false)? == PCAPNG_SHB {
                    u32_at(data, 8, true)? == PCAPNG_BOM
                } else {
                    self.state.ng_big_endian
                };
                u32_at(data, 4, big_endian).map(u64::from)
            }
        }
    }

    fn check_block_limit(&mut self) -> Result<(), CaptureError> {
        match self.declared_block_len() {
            Some(need) if need > self.max_block_size as u64 => {
                self.finished = true;
                Err(CaptureError::BlockTooLarge {
                    input: self.input.clone(),
                    offset: self.offset(),
                    size: need,
                    limit: self.max_block_size as u64,
                })
            }
            _ => Ok(()),
        }
    }

    /// Makes room for the block at the buffer's start, within the limit.
    fn grow(&mut self) -> Result<(), CaptureError> {
        let available = self.reader.data().len() as u64;
        let need = match self.declared_block_len() {
            Some(need) if need <= available => {
                return Err(
                    self.fail_malformed("block content does not fit its declared length".into())
                )
            }
            Some(need) => need,
            None => (self.capacity as u64).saturating_mul(2),
        };
        if need > self.max_block_size as u64 {
            self.finished = true;
            return Err(CaptureError::BlockTooLarge {
                input: self.input.clone(),
                offset: self.offset(),
                size: need,
                limit: self.max_block_size as u64,
            });
        }
        // `need` fits in usize: it is at most max_block_size.
        let new_capacity = (need as usize).max(self.capacity);
        if new_capacity > self.capacity {
            self.reader.grow(new_capacity);
            self.capacity = new_capacity;
        }
        if self.reader.refill().is_err() {
            self.finished = true;
            return Err(self.take_io_error().unwrap_or_else(|| self.truncated()));
        }
        Ok(())
    }

    fn step(&mut self) -> Step {
        let state = &mut self.state;
        match self.reader.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => {
                state.linktype = LinkType(h.network.0 as u32);
                Step::Skip(len)
            }
            Ok((len, PcapBlockOwned::Legacy(b))) => {
                let frac = i64::from(b.ts_usec);
                let nanos = if state.nanosecond { frac } else { frac * 1000 };
                let ts = Timestamp::from_nanos(
                    i64::from(b.ts_sec)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(nanos),
                );
                Step::Packet(PacketInfo {
                    block_len: len,
                    start: state.record_header_len,
                    len: b.data.len(),
                    ts,
                    linktype: state.linktype,
                    orig_len: b.origlen.max(b.caplen),
                })
            }
            Ok((len, PcapBlockOwned::NG(block))) => state.ng_block(len, block),
            Err(PcapError::Eof) | Err(PcapError::ReadError) => Step::End,
            Err(PcapError::UnexpectedEof) => Step::Cut,
            Err(PcapError::Incomplete(_)) => Step::Refill,
            Err(PcapError::BufferTooSmall) => Step::Grow,
            Err(e) => Step::Bad(describe_pcap_error(&e)),
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
    fn ng_block(&mut self, len: usize, block: Block<'_>) -> Step {
        match block {
            Block::SectionHeader(shb) => {
                self.ng_big_endian = shb.big_endian();
                self.interfaces.clear();
                self.stats.sections += 1;
                Step::Skip(len)
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
                Step::Skip(len)
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| self.interfaces.get(i).copied())
                else {
                    self.stats.unknown_interface += 1;
                    return Step::Skip(len);
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = ng_timestamp(units, iface.resolution, iface.offset_secs);
                self.last_ts = ts;
                let caplen = (epb.caplen as usize).min(epb.data.len());
                Step::Packet(PacketInfo {
                    block_len: len,
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
                    return Step::Skip(len);
                };
                // SPB data is padded: the original length and the
                // interface's snaplen bound the packet.
                let mut caplen = (spb.origlen as usize).min(spb.data.len());
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Step::Packet(PacketInfo {
                    block_len: len,
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
                Step::Skip(len)
            }
            _ => {
                self.stats.blocks_skipped += 1;
                Step::Skip(len)
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
