//! From inputs to [`Record`]s: capture → TCP reassembly → HTTP/1.x.
//!
//! [`process_capture`] reads one capture file (or `-` for stdin) and hands
//! every record to a sink as soon as it is complete, so a caller can decide
//! on an exchange while the rest of the input is still being read. Its
//! [`CaptureReport`] says what was read, skipped and repaired.

use std::collections::HashMap;
use std::sync::Arc;

use shadowmcp_capture::{
    CaptureError, CaptureReader, DecodeStats, DecoderConfig, PacketDecoder, ReaderConfig,
    ReaderStats,
};
use shadowmcp_exchange::{Origin, Record, Timestamp};
use shadowmcp_http1::{Connection, ExchangeIds, Http1Config, Http1Stats};
use shadowmcp_reassembly::{
    ConnId, Reassembler, ReassemblyConfig, ReassemblyStats, Segment, StreamEvent, StreamSink,
    TcpFlags,
};

/// Every limit of the capture path, each with its layer's documented default.
#[derive(Clone, Debug, Default)]
pub struct CaptureConfig {
    pub reader: ReaderConfig,
    pub decoder: DecoderConfig,
    pub reassembly: ReassemblyConfig,
    pub http1: Http1Config,
}

/// What one capture produced, skipped and repaired.
#[derive(Clone, Debug, Default)]
pub struct CaptureReport {
    pub input: String,
    pub reader: ReaderStats,
    pub decode: DecodeStats,
    pub reassembly: ReassemblyStats,
    pub http: Http1Stats,
    /// Records handed to the sink.
    pub records: u64,
    /// Set when the capture ended mid-packet: every complete packet before
    /// the cut was processed. One line, naming the input.
    pub truncated: Option<String>,
}

/// Reads `input` (a path, or `-` for standard input) to the end and hands
/// every record to `sink` as soon as it is complete.
///
/// A file that is not a capture, or cannot be read, is an error. A capture
/// cut short is not: everything before the cut is processed and
/// [`CaptureReport::truncated`] says so.
pub fn process_capture(
    input: &str,
    config: &CaptureConfig,
    ids: &ExchangeIds,
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    let reader = CaptureReader::open_with(input, config.reader.clone())?;
    process_reader(reader, config, ids, sink)
}

/// [`process_capture`] over an opened reader.
pub fn process_reader(
    mut reader: CaptureReader,
    config: &CaptureConfig,
    ids: &ExchangeIds,
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    let input = reader.input().to_string();
    let mut decoder = PacketDecoder::new(config.decoder.clone());
    let mut reassembler = Reassembler::new(config.reassembly.clone());
    let mut http = HttpStage {
        conns: HashMap::new(),
        config: Arc::new(config.http1.clone()),
        ids: ids.clone(),
        input: input.clone(),
        packet_number: 0,
        last_ts: Timestamp::default(),
        out: Vec::new(),
        closed_stats: Http1Stats::default(),
    };
    let mut records = 0u64;
    let mut truncated = None;
    let mut last_advance: Option<Timestamp> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) if !e.is_fatal() => {
                truncated = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        let ts = packet.ts;
        http.last_ts = ts;
        if let Some(tcp) = decoder.decode(&packet) {
            http.packet_number = tcp.number;
            let seg = Segment {
                ts: tcp.ts,
                src: tcp.src,
                dst: tcp.dst,
                seq: tcp.seq,
                ack: tcp.ack,
                flags: TcpFlags {
                    syn: tcp.flags.syn,
                    ack: tcp.flags.ack,
                    fin: tcp.flags.fin,
                    rst: tcp.flags.rst,
                    psh: tcp.flags.psh,
                },
                payload: &tcp.payload,
                missing: tcp.missing,
            };
            reassembler.process(&seg, &mut http);
        }
        // Idle timeouts run on capture time, checked at most once a second
        // of it so the scan of the connection table stays off the hot path.
        if last_advance.is_none_or(|t| ts.as_nanos() - t.as_nanos() >= 1_000_000_000) {
            reassembler.advance(ts, &mut http);
            last_advance = Some(ts);
        }
        records += http.drain(sink);
    }
    decoder.finish();
    reassembler.finish(&mut http);
    records += http.drain(sink);
    let mut http_stats = http.closed_stats.clone();
    for conn in http.conns.values() {
        http_stats.merge(conn.stats());
    }
    Ok(CaptureReport {
        input,
        reader: reader.stats().clone(),
        decode: decoder.stats().clone(),
        reassembly: reassembler.stats(),
        http: http_stats,
        records,
        truncated,
    })
}

/// One HTTP/1 parser per reassembled connection.
struct HttpStage {
    conns: HashMap<ConnId, Connection>,
    config: Arc<Http1Config>,
    ids: ExchangeIds,
    input: String,
    packet_number: u64,
    /// Capture time of the packet being processed (events without their own
    /// timestamp happen at it).
    last_ts: Timestamp,
    out: Vec<Record>,
    /// Statistics of connections already closed.
    closed_stats: Http1Stats,
}

impl HttpStage {
    fn drain(&mut self, sink: &mut dyn FnMut(Record)) -> u64 {
        let n = self.out.len() as u64;
        for r in self.out.drain(..) {
            sink(r);
        }
        n
    }
}

fn http_dir(dir: shadowmcp_reassembly::Direction) -> shadowmcp_http1::Direction {
    match dir {
        shadowmcp_reassembly::Direction::ToServer => shadowmcp_http1::Direction::ToServer,
        shadowmcp_reassembly::Direction::ToClient => shadowmcp_http1::Direction::ToClient,
    }
}

impl StreamSink for HttpStage {
    fn event(&mut self, event: StreamEvent<'_>) {
        match event {
            StreamEvent::Opened {
                conn,
                flow,
                midstream,
                ..
            } => {
                let origin = Origin {
                    input: self.input.clone(),
                    position: self.packet_number,
                };
                let c = Connection::new(
                    flow,
                    origin,
                    midstream,
                    self.config.clone(),
                    self.ids.clone(),
                );
                self.conns.insert(conn, c);
            }
            StreamEvent::Data {
                conn,
                dir,
                ts,
                data,
            } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.on_data(http_dir(dir), ts, data, &mut self.out);
                }
            }
            StreamEvent::Gap { conn, dir, len } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.on_gap(http_dir(dir), len, &mut self.out);
                }
            }
            StreamEvent::Fin { conn, dir } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.on_fin(http_dir(dir), self.last_ts, &mut self.out);
                }
            }
            StreamEvent::Closed { conn, ts, .. } => {
                if let Some(mut c) = self.conns.remove(&conn) {
                    c.on_close(ts, &mut self.out);
                    self.closed_stats.merge(c.stats());
                }
            }
        }
    }
}
