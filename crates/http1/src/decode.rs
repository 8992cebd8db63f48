//! Content-Encoding decoding: streaming, stacked, and capped.
//!
//! Every decoder is driven through a push API with a fixed-size output
//! buffer, so decoded output grows in small steps and stops as soon as the
//! sink has had enough: a decompression bomb never allocates beyond the cap.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Decompress, FlushDecompress, Status};
use zstd::stream::raw::{DParameter, Decoder as ZstdDecoder, Operation};

/// Output step of every decoder stage.
const OUT_CHUNK: usize = 32 * 1024;

/// Where decoded bytes go. Returns `false` when it wants no more.
pub(crate) trait Sink {
    fn accept(&mut self, data: &[u8]) -> bool;
}

/// A stack of content decoders, applied in the reverse of the order the
/// sender applied them.
pub(crate) struct ContentDecoder {
    stages: Vec<Stage>,
    error: Option<String>,
    /// No more decoding: the sink is full or a stage failed.
    stopped: bool,
}

impl ContentDecoder {
    /// A decoder for `encodings` (as listed in Content-Encoding, in the order
    /// applied). Unknown codings disable decoding: the raw bytes are kept and
    /// the error says why.
    pub(crate) fn new(encodings: &[String], zstd_window_log_max: u32) -> ContentDecoder {
        let mut stages = Vec::new();
        let mut error = None;
        for enc in encodings.iter().rev() {
            let stage = match enc.as_str() {
                "identity" | "" => continue,
                "gzip" | "x-gzip" => Stage::Gzip(Box::default()),
                "deflate" => Stage::Deflate(Box::default()),
                "br" => Stage::Brotli(Box::new(BrotliStage::new())),
                "zstd" => match ZstdStage::new(zstd_window_log_max) {
                    Ok(s) => Stage::Zstd(Box::new(s)),
                    Err(e) => {
                        error = Some(format!("zstd decoder setup failed: {e}"));
                        stages.clear();
                        break;
                    }
                },
                other => {
                    error = Some(format!("unsupported content-encoding: {other}"));
                    stages.clear();
                    break;
                }
            };
            stages.push(stage);
        }
        ContentDecoder {
            stages,
            error,
            stopped: false,
        }
    }

    /// True when bytes pass through unchanged.
    pub(crate) fn is_passthrough(&self) -> bool {
        self.stages.is_empty()
    }

    pub(crate) fn error(&self) -> Option<&String> {
        self.error.as_ref()
    }

    pub(crate) fn push(&mut self, input: &[u8], sink: &mut dyn Sink) {
        if self.stages.is_empty() {
            // Pass-through: the sink keeps counting even when full.
            sink.accept(input);
            return;
        }
        if self.stopped || input.is_empty() {
            return;
        }
        match run(&mut self.stages, input, sink) {
            Ok(true) => {}
            Ok(false) => self.stopped = true,
            Err(e) => self.fail(e),
        }
    }

    /// End of the body: flush every stage and check that each stream ended.
    pub(crate) fn finish(&mut self, sink: &mut dyn Sink) {
        if self.stopped || self.stages.is_empty() {
            return;
        }
        for i in 0..self.stages.len() {
            let (head, tail) = self.stages.split_at_mut(i + 1);
            let Some(stage) = head.last_mut() else { break };
            let mut err = None;
            let res = stage.finish(&mut |chunk| forward(tail, chunk, sink, &mut err));
            if let Some(e) = err {
                self.fail(e);
                return;
            }
            match res {
                Ok(true) => {}
                Ok(false) => {
                    self.stopped = true;
                    return;
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// Stops decoding with `msg` as the error (the first error wins).
    pub(crate) fn fail(&mut self, msg: impl Into<String>) {
        if self.error.is_none() && !self.stages.is_empty() {
            self.error = Some(msg.into());
        }
        self.stopped = true;
    }
}

fn forward(
    stages: &mut [Stage],
    chunk: &[u8],
    sink: &mut dyn Sink,
    err: &mut Option<String>,
) -> bool {
    match run(stages, chunk, sink) {
        Ok(c) => c,
        Err(e) => {
            *err = Some(e);
            false
        }
    }
}

/// Pushes `input` through `stages` into `sink`; `Ok(false)` when the sink
/// wants no more.
fn run(stages: &mut [Stage], input: &[u8], sink: &mut dyn Sink) -> Result<bool, String> {
    match stages.split_first_mut() {
        None => Ok(sink.accept(input)),
        Some((first, rest)) => {
            let mut err = None;
            let cont = first.push(input, &mut |chunk| forward(rest, chunk, sink, &mut err));
            if let Some(e) = err {
                return Err(e);
            }
            cont
        }
    }
}

type Emit<'a> = dyn FnMut(&[u8]) -> bool + 'a;

enum Stage {
    Gzip(Box<GzipStage>),
    Deflate(Box<DeflateStage>),
    Brotli(Box<BrotliStage>),
    Zstd(Box<ZstdStage>),
}

impl Stage {
    fn push(&mut self, input: &[u8], emit: &mut Emit<'_>) -> Result<bool, String> {
        match self {
            Stage::Gzip(s) => s.push(input, emit),
            Stage::Deflate(s) => s.push(input, emit),
            Stage::Brotli(s) => s.push(input, emit),
            Stage::Zstd(s) => s.push(input, emit),
        }
    }

    fn finish(&mut self, emit: &mut Emit<'_>) -> Result<bool, String> {
        match self {
            Stage::Gzip(s) => s.finish(),
            Stage::Deflate(s) => s.finish(),
            Stage::Brotli(s) => s.finish(),
            Stage::Zstd(s) => s.finish(emit),
        }
    }
}

/// Runs `d` over `input` until it needs more input, ends, or the sink is
/// full. Returns (bytes consumed, stream ended, sink wants more).
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    mut on_output: impl FnMut(&[u8]) -> bool,
) -> Result<(usize, bool, bool), String> {
    out.resize(OUT_CHUNK, 0);
    let start_len = input.len();
    loop {
        let before_in = d.total_in();
        let before_out = d.total_out();
        let status = d
            .decompress(input, out, FlushDecompress::None)
            .map_err(|e| format!("invalid deflate data: {e}"))?;
        let consumed = usize::try_from(d.total_in().saturating_sub(before_in)).unwrap_or(0);
        let produced = usize::try_from(d.total_out().saturating_sub(before_out)).unwrap_or(0);
        input = input.get(consumed..).unwrap_or_default();
        if produced > 0 && !on_output(out.get(..produced).unwrap_or_default()) {
            return Ok((start_len - input.len(), false, false));
        }
        if status == Status::StreamEnd {
            return Ok((start_len - input.len(), true, true));
        }
        if consumed == 0 && produced == 0 {
            return Ok((start_len - input.len(), false, true));
        }
        if input.is_empty() && produced < out.len() {
            return Ok((start_len - input.len(), false, true));
        }
    }
}

/// gzip (RFC 1952), several members allowed, CRC and size checked.
#[derive(Default)]
struct GzipStage {
    state: GzState,
    header: GzHeader,
    inflater: Option<Decompress>,
    crc: crc32fast::Hasher,
    trailer: Vec<u8>,
    out: Vec<u8>,
    members: u32,
}

#[derive(Default, PartialEq, Eq)]
enum GzState {
    #[default]
    Header,
    Body,
    Trailer,
    /// A member ended; another may follow.
    Between,
}

#[derive(Default)]
struct GzHeader {
    fixed: Vec<u8>,
    flags: u8,
    part: GzPart,
    extra_len: Vec<u8>,
    skip: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum GzPart {
    #[default]
    Fixed,
    ExtraLen,
    Extra,
    Name,
    Comment,
    HeaderCrc,
    Done,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl GzHeader {
    /// Consumes header bytes; returns how many were used.
    fn feed(&mut self, input: &[u8]) -> Result<usize, String> {
        let mut i = 0;
        while self.part != GzPart::Done {
            let Some(&b) = input.get(i) else { break };
            match self.part {
                GzPart::Fixed => {
                    self.fixed.push(b);
                    i += 1;
                    if self.fixed.len() == 10 {
                        if self.fixed.get(..3) != Some(&[0x1f, 0x8b, 8][..]) {
                            return Err("not a gzip stream".into());
                        }
                        self.flags = self.fixed.get(3).copied().unwrap_or(0);
                        self.part = self.next_after(GzPart::Fixed);
                    }
                }
                GzPart::ExtraLen => {
                    self.extra_len.push(b);
                    i += 1;
                    if self.extra_len.len() == 2 {
                        self.skip = usize::from(u16::from_le_bytes([
                            self.extra_len.first().copied().unwrap_or(0),
                            self.extra_len.get(1).copied().unwrap_or(0),
                        ]));
                        self.part = GzPart::Extra;
                    }
                }
                GzPart::Extra | GzPart::HeaderCrc => {
                    let take = self.skip.min(input.len() - i);
                    self.skip -= take;
                    i += take;
                    if self.skip == 0 {
                        self.part = self.next_after(self.part);
                    }
                }
                GzPart::Name | GzPart::Comment => {
                    let rest = input.get(i..).unwrap_or_default();
                    match rest.iter().position(|&c| c == 0) {
                        Some(p) => {
                            i += p + 1;
                            self.part = self.next_after(self.part);
                        }
                        None => i = input.len(),
                    }
                }
                GzPart::Done => break,
            }
        }
        Ok(i)
    }

    fn next_after(&mut self, part: GzPart) -> GzPart {
        let order = [
            (GzPart::ExtraLen, FEXTRA),
            (GzPart::Name, FNAME),
            (GzPart::Comment, FCOMMENT),
            (GzPart::HeaderCrc, FHCRC),
        ];
        let from = match part {
            GzPart::Fixed => 0,
            GzPart::ExtraLen | GzPart::Extra => 1,
            GzPart::Name => 2,
            GzPart::Comment => 3,
            _ => 4,
        };
        for (p, flag) in order.iter().skip(from) {
            if self.flags & flag != 0 {
                if *p == GzPart::HeaderCrc {
                    self.skip = 2;
                }
                return *p;
            }
        }
        GzPart::Done
    }
}

impl GzipStage {
    fn push(&mut self, mut input: &[u8], emit: &mut Emit<'_>) -> Result<bool, String> {
        while !input.is_empty() {
            match self.state {
                GzState::Between => {
                    if input.first() == Some(&0x1f) {
                        self.header = GzHeader::default();
                        self.state = GzState::Header;
                    } else {
                        return Err("trailing data after gzip stream".into());
                    }
                }
                GzState::Header => {
                    let used = self.header.feed(input)?;
                    input = input.get(used..).unwrap_or_default();
                    if self.header.part == GzPart::Done {
                        self.state = GzState::Body;
                        self.inflater = Some(Decompress::new(false));
                        self.crc = crc32fast::Hasher::new();
                    }
                }
                GzState::Body => {
                    let Some(d) = self.inflater.as_mut() else {
                        return Err("gzip decoder state".into());
                    };
                    let crc = &mut self.crc;
                    let (used, ended, more) = inflate(d, input, &mut self.out, |chunk| {
                        crc.update(chunk);
                        emit(chunk)
                    })?;
                    input = input.get(used..).unwrap_or_default();
                    if !more {
                        return Ok(false);
                    }
                    if ended {
                        self.state = GzState::Trailer;
                        self.trailer.clear();
                    } else if used == 0 {
                        break;
                    }
                }
                GzState::Trailer => {
                    let take = (8 - self.trailer.len()).min(input.len());
                    self.trailer
                        .extend_from_slice(input.get(..take).unwrap_or_default());
                    input = input.get(take..).unwrap_or_default();
                    if self.trailer.len() == 8 {
                        self.check_trailer()?;
                        self.members += 1;
                        self.state = GzState::Between;
                    }
                }
            }
        }
        Ok(true)
    }

    fn check_trailer(&mut self) -> Result<(), String> {
        let word = |i: usize| -> u32 {
            let mut b = [0u8; 4];
            if let Some(s) = self.trailer.get(i..i + 4) {
                b.copy_from_slice(s);
            }
            u32::from_le_bytes(b)
        };
        let crc = std::mem::take(&mut self.crc).finalize();
        let size = self
            .inflater
            .as_ref()
            .map(|d| d.total_out() as u32) // ISIZE is the size modulo 2^32
            .unwrap_or(0);
        if word(0) != crc {
            return Err("gzip CRC mismatch".into());
        }
        if word(4) != size {
            return Err("gzip size mismatch".into());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<bool, String> {
        match self.state {
            GzState::Between => Ok(true),
            _ => Err("truncated gzip stream".into()),
        }
    }
}

/// `deflate`: zlib-wrapped (RFC 1950) as specified, raw deflate as some
/// servers send it; told apart by the zlib header check.
#[derive(Default)]
struct DeflateStage {
    first: Option<u8>,
    inflater: Option<Decompress>,
    ended: bool,
    out: Vec<u8>,
}

impl DeflateStage {
    fn push(&mut self, mut input: &[u8], emit: &mut Emit<'_>) -> Result<bool, String> {
        if self.ended {
            return if input.is_empty() {
                Ok(true)
            } else {
                Err("trailing data after deflate stream".into())
            };
        }
        if self.inflater.is_none() {
            let (b0, b1) = match (self.first, input.first()) {
                (Some(b0), Some(&b1)) => (b0, b1),
                (None, Some(&b0)) => match input.get(1) {
                    Some(&b1) => (b0, b1),
                    None => {
                        self.first = Some(b0);
                        return Ok(true);
                    }
                },
                (_, None) => return Ok(true),
            };
            let zlib =
                b0 & 0x0f == 8 && b0 >> 4 <= 7 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0;
            let mut d = Decompress::new(zlib);
            if let Some(b0) = self.first.take() {
                // Replay the byte held back for the sniff.
                let (_, ended, more) = inflate(&mut d, &[b0], &mut self.out, &mut *emit)?;
                self.ended = ended;
                if !more {
                    self.inflater = Some(d);
                    return Ok(false);
                }
            }
            self.inflater = Some(d);
        }
        let Some(d) = self.inflater.as_mut() else {
            return Ok(true);
        };
        let (used, ended, more) = inflate(d, input, &mut self.out, &mut *emit)?;
        input = input.get(used..).unwrap_or_default();
        if ended {
            self.ended = true;
            if !input.is_empty() {
                return Err("trailing data after deflate stream".into());
            }
        }
        Ok(more)
    }

    fn finish(&mut self) -> Result<bool, String> {
        if self.ended {
            Ok(true)
        } else {
            Err("truncated deflate stream".into())
        }
    }
}

/// `br` (RFC 7932). Large-window streams are refused, so the ring buffer
/// stays within the standard 16 MiB window.
struct BrotliStage {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    out: Vec<u8>,
    ended: bool,
}

impl BrotliStage {
    fn new() -> BrotliStage {
        BrotliStage {
            state: BrotliState::new_strict(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            out: vec![0; OUT_CHUNK],
            ended: false,
        }
    }

    fn push(&mut self, input: &[u8], emit: &mut Emit<'_>) -> Result<bool, String> {
        if self.ended {
            return if input.is_empty() {
                Ok(true)
            } else {
                Err("trailing data after brotli stream".into())
            };
        }
        let mut avail_in = input.len();
        let mut in_off = 0;
        loop {
            let mut avail_out = self.out.len();
            let mut out_off = 0;
            let mut total = 0;
            let result = BrotliDecompressStream(
                &mut avail_in,
                &mut in_off,
                input,
                &mut avail_out,
                &mut out_off,
                &mut self.out,
                &mut total,
                &mut self.state,
            );
            if out_off > 0 && !emit(self.out.get(..out_off).unwrap_or_default()) {
                return Ok(false);
            }
            match result {
                BrotliResult::NeedsMoreOutput => continue,
                BrotliResult::NeedsMoreInput => return Ok(true),
                BrotliResult::ResultSuccess => {
                    self.ended = true;
                    return if avail_in > 0 {
                        Err("trailing data after brotli stream".into())
                    } else {
                        Ok(true)
                    };
                }
                BrotliResult::ResultFailure => return Err("invalid brotli data".into()),
            }
        }
    }

    fn finish(&mut self) -> Result<bool, String> {
        if self.ended {
            Ok(true)
        } else {
            Err("truncated brotli stream".into())
        }
    }
}

/// `zstd` (RFC 8878), window limited as RFC 9659 asks of HTTP decoders.
struct ZstdStage {
    decoder: ZstdDecoder<'static>,
    out: Vec<u8>,
    /// A frame was started and not finished.
    in_frame: bool,
}

impl ZstdStage {
    fn new(window_log_max: u32) -> std::io::Result<ZstdStage> {
        let mut decoder = ZstdDecoder::new()?;
        decoder.set_parameter(DParameter::WindowLogMax(window_log_max))?;
        Ok(ZstdStage {
            decoder,
            out: vec![0; OUT_CHUNK],
            in_frame: false,
        })
    }

    fn push(&mut self, mut input: &[u8], emit: &mut Emit<'_>) -> Result<bool, String> {
        loop {
            let status = self
                .decoder
                .run_on_buffers(input, &mut self.out)
                .map_err(|e| format!("invalid zstd data: {e}"))?;
            input = input.get(status.bytes_read..).unwrap_or_default();
            // An empty call after a frame ends only hints at the next
            // frame's header; it does not start one.
            if status.remaining == 0 {
                self.in_frame = false;
            } else if status.bytes_read > 0 {
                self.in_frame = true;
            }
            if status.bytes_written > 0
                && !emit(self.out.get(..status.bytes_written).unwrap_or_default())
            {
                return Ok(false);
            }
            if status.bytes_read == 0 && status.bytes_written == 0 {
                return Ok(true);
            }
            if input.is_empty() && status.bytes_written < self.out.len() {
                return Ok(true);
            }
        }
    }

    fn finish(&mut self, emit: &mut Emit<'_>) -> Result<bool, String> {
        if !self.push(&[], emit)? {
            return Ok(false);
        }
        if self.in_frame {
            Err("truncated zstd stream".into())
        } else {
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct VecSink {
        data: Vec<u8>,
        cap: usize,
    }
    impl Sink for VecSink {
        fn accept(&mut self, d: &[u8]) -> bool {
            let room = self.cap.saturating_sub(self.data.len());
            self.data.extend_from_slice(&d[..d.len().min(room)]);
            d.len() <= room
        }
    }

    fn decode(encs: &[&str], wire: &[u8], step: usize) -> (Vec<u8>, Option<String>) {
        let encs: Vec<String> = encs.iter().map(|s| s.to_string()).collect();
        let mut d = ContentDecoder::new(&encs, 23);
        let mut sink = VecSink {
            data: Vec::new(),
            cap: usize::MAX,
        };
        for chunk in wire.chunks(step.max(1)) {
            d.push(chunk, &mut sink);
        }
        d.finish(&mut sink);
        (sink.data, d.error().cloned())
    }

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_any_split_and_multi_member() {
        let text = b"hello hello hello world".repeat(50);
        let mut wire = gzip(&text);
        wire.extend(gzip(b"tail"));
        for step in [1, 3, 7, 4096] {
            let (out, err) = decode(&["gzip"], &wire, step);
            assert_eq!(err, None);
            let mut want = text.clone();
            want.extend_from_slice(b"tail");
            assert_eq!(out, want);
        }
    }

    #[test]
    fn gzip_header_with_name_and_extra() {
        let mut b = flate2::GzBuilder::new()
            .filename("x.txt")
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        b.write_all(b"payload").unwrap();
        let wire = b.finish().unwrap();
        assert_eq!(decode(&["x-gzip"], &wire, 1), (b"payload".to_vec(), None));
    }

    #[test]
    fn gzip_crc_mismatch_and_truncation_are_errors() {
        let mut wire = gzip(b"some data");
        let n = wire.len();
        wire[n - 8] ^= 0xff;
        let (out, err) = decode(&["gzip"], &wire, 5);
        assert_eq!(out, b"some data");
        assert!(err.unwrap().contains("CRC"));
        let wire = gzip(b"some data");
        let (_, err) = decode(&["gzip"], &wire[..wire.len() - 3], 5);
        assert!(err.unwrap().contains("truncated"));
        let (_, err) = decode(&["gzip"], b"not gzip at all", 5);
        assert!(err.is_some());
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib body").unwrap();
        let zw = z.finish().unwrap();
        assert_eq!(decode(&["deflate"], &zw, 1), (b"zlib body".to_vec(), None));
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(b"raw body").unwrap();
        let rw = r.finish().unwrap();
        assert_eq!(decode(&["deflate"], &rw, 1), (b"raw body".to_vec(), None));
        assert_eq!(decode(&["deflate"], &rw, 100), (b"raw body".to_vec(), None));
    }

    #[test]
    fn unknown_encoding_keeps_raw() {
        let (out, err) = decode(&["gzip", "compress"], b"raw", 1);
        assert_eq!(out, b"raw");
        assert!(err.unwrap().contains("compress"));
        assert_eq!(decode(&["identity"], b"raw", 2), (b"raw".to_vec(), None));
    }

    #[test]
    fn zstd_and_brotli_bad_data_is_an_error() {
        assert!(decode(&["zstd"], b"\x28\xb5\x2f\xfdgarbage!", 3)
            .1
            .is_some());
        assert!(decode(&["br"], &[0xff; 40], 3).1.is_some());
    }
}
