//! From inputs to [`Record`]s: capture → TCP reassembly → TLS (handshake
//! metadata always, decryption with a key log) → HTTP/1.x or HTTP/2, the
//! protocol of each connection decided on its first bytes.
//!
//! [`process_capture`] reads one capture file (or `-` for stdin) on the
//! calling thread and hands every record to a sink as soon as it is
//! complete, so a caller can decide on an exchange while the rest of the
//! input is still being read. Its [`CaptureReport`] says what was read,
//! skipped and repaired.
//!
//! [`process_capture_sharded`] spreads the work over worker threads, each
//! owning the connections of its share of address pairs (both directions
//! and every connection between two hosts go to the same worker, so an MCP
//! session spread over several connections is seen in order by one worker):
//! their reassembly, HTTP parsing and whatever the caller does with records
//! (detection); one writer thread receives the workers' output. A capture
//! file is read once, in chunks of whole blocks, by the workers themselves:
//! whichever runs low on segments reads the next chunk under a lock,
//! decodes its packets and hands every worker its segments as places in the
//! shared chunk, so no payload is copied and no thread only reads. A pipe,
//! a gzip'd capture or a live capture is read by the calling thread, which
//! copies each worker its segments (it waits for the writer or inflates
//! while the workers work). Bounded memory: a file's chunks in flight are
//! capped, and the other queues are bounded, so a slow stage slows the
//! reading down instead of dropping packets.
//!
//! Records are the same whatever the thread count: exchange ids are derived
//! from flow ids ([`shadowmcp_http1::ExchangeIds::for_flow`]), and idle timeouts run on
//! capture time broadcast to every worker. Only their interleaving differs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError, TryLockError, Weak};
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};
use shadowmcp_capture::{
    CaptureError, CaptureParts, CaptureReader, Chunk, DecodeStats, DecoderConfig,
    DecryptionSecrets, Packet, PacketDecoder, ReaderConfig, ReaderStats, TcpPacket,
};

mod app;
#[cfg(feature = "live")]
pub mod live;
use shadowmcp_exchange::{Flow, Origin, Record, Timestamp};
use shadowmcp_http1::{Http1Config, Http1Stats};
pub use shadowmcp_http2::{Http2Config, Http2Stats};
use shadowmcp_reassembly::{
    ConnId, Reassembler, ReassemblyConfig, ReassemblyStats, Segment, StreamEvent, StreamSink,
    TcpFlags,
};
pub use shadowmcp_tls::{KeyLog, KeyLogError, TlsConfig, TlsStats};

/// Flow tables are keyed by addresses and ports an attacker chooses:
/// foldhash with a per-process random seed is several times cheaper than
/// SipHash and still keeps keys unpredictable.
type FlowHasher = foldhash::fast::RandomState;

/// Every limit of the capture path, each with its layer's documented
/// default, and who to tell about progress.
#[derive(Clone, Debug, Default)]
pub struct CaptureConfig {
    pub reader: ReaderConfig,
    pub decoder: DecoderConfig,
    pub reassembly: ReassemblyConfig,
    pub http1: Http1Config,
    /// HTTP/2 limits (prior knowledge, or `h2` inside decrypted TLS).
    pub http2: Http2Config,
    /// TLS limits and the key log that decrypts connections (`None`:
    /// handshake metadata only).
    pub tls: TlsConfig,
    pub observer: Option<ObserverHandle>,
}

/// Receives running totals while a capture is processed: from the reading
/// thread and from each worker, once a second of capture time and at the
/// end (e.g. to export metrics while a long scan runs).
pub trait Observer: Send + Sync {
    fn reader(&self, input: &str, reader: &ReaderStats, decode: &DecodeStats);
    fn worker(&self, input: &str, worker: usize, reassembly: &ReassemblyStats, http: &Http1Stats);
    /// The same worker's TLS and HTTP/2 running totals.
    fn worker_tls_http2(&self, _input: &str, _worker: usize, _tls: &TlsStats, _http2: &Http2Stats) {
    }
    /// Running totals of packets a live capture lost (kernel buffer full,
    /// interface drops).
    fn capture_drops(&self, _input: &str, _kernel: u64, _interface: u64) {}
}

/// A shared [`Observer`].
#[derive(Clone)]
pub struct ObserverHandle(pub Arc<dyn Observer>);

impl std::fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObserverHandle")
    }
}

fn observe_reader<S: PacketSource>(
    config: &CaptureConfig,
    source: &mut S,
    decoder: &PacketDecoder,
    report: &mut CaptureReport,
) {
    let reading = Reading {
        stats: source.stats(),
        drops: source.drops(),
        failure: None,
    };
    if let Some((kernel, interface)) = reading.drops {
        report.kernel_drops = kernel;
        report.interface_drops = interface;
    }
    observe_reading(config, source.input(), &reading, decoder);
}

fn observe_reading(
    config: &CaptureConfig,
    input: &str,
    reading: &Reading,
    decoder: &PacketDecoder,
) {
    if let Some(o) = &config.observer {
        o.0.reader(input, &reading.stats, decoder.stats());
        if let Some((kernel, interface)) = reading.drops {
            o.0.capture_drops(input, kernel, interface);
        }
    }
}

/// Where the reading side of [`process_capture_sharded`] has got to.
#[derive(Default)]
struct Reading {
    stats: ReaderStats,
    /// `(kernel, interface)` drops of a live capture.
    drops: Option<(u64, u64)>,
    /// What stopped the input early.
    failure: Option<CaptureError>,
}

/// What a [`PacketSource`] has next.
pub enum Next<'a> {
    Packet(Packet<'a>),
    /// No packet arrived for a while (live capture): time has reached this
    /// instant all the same, so idle timeouts can run.
    Idle(Timestamp),
    /// The input is finished (end of file, or a live capture was stopped).
    End,
}

/// Where packets come from: a capture file or a live interface.
pub trait PacketSource {
    /// The input's name for reports and errors.
    fn input(&self) -> &str;
    /// The next packet. A non-fatal error ([`CaptureError::is_fatal`]) ends
    /// the input with a warning.
    fn next(&mut self) -> Result<Next<'_>, CaptureError>;
    fn stats(&self) -> ReaderStats;
    /// Packets the capture lost before shadowmcp saw them: `(kernel,
    /// interface)` drops, for live captures.
    fn drops(&mut self) -> Option<(u64, u64)> {
        None
    }
    /// The source's reading and parsing halves when it is a capture file
    /// (see [`process_capture_sharded`]); `Err(self)` otherwise.
    fn into_parts(self) -> Result<CaptureParts, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
    /// TLS secrets the input carried since the last call (pcapng
    /// Decryption Secrets Blocks).
    fn take_secrets(&mut self) -> Vec<DecryptionSecrets> {
        Vec::new()
    }
}

impl PacketSource for CaptureReader {
    fn input(&self) -> &str {
        CaptureReader::input(self)
    }

    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        Ok(match self.next_packet()? {
            Some(p) => Next::Packet(p),
            None => Next::End,
        })
    }

    fn stats(&self) -> ReaderStats {
        CaptureReader::stats(self).clone()
    }

    /// Only for a plain file: a pipe is read best by a thread of its own,
    /// which waits for the writer while the workers work, and so is a
    /// gzip'd file, whose inflating would stall the worker holding the
    /// lock (see `docs/performance.md`).
    fn into_parts(self) -> Result<CaptureParts, Self> {
        if self.is_file() && !self.is_gzip() {
            Ok(CaptureReader::into_parts(self))
        } else {
            Err(self)
        }
    }

    fn take_secrets(&mut self) -> Vec<DecryptionSecrets> {
        self.take_decryption_secrets()
    }
}

fn observe_worker(config: &CaptureConfig, input: &str, index: usize, worker: &FlowWorker) {
    if let Some(o) = &config.observer {
        let (reassembly, http) = worker.stats();
        o.0.worker(input, index, &reassembly, &http);
        let (tls, http2) = worker.app_stats();
        o.0.worker_tls_http2(input, index, &tls, &http2);
    }
}

/// What one capture produced, skipped and repaired.
#[derive(Clone, Debug, Default)]
pub struct CaptureReport {
    pub input: String,
    pub reader: ReaderStats,
    pub decode: DecodeStats,
    pub reassembly: ReassemblyStats,
    pub http: Http1Stats,
    /// TLS connections: handshakes, records decrypted and not (by reason).
    pub tls: TlsStats,
    pub http2: Http2Stats,
    /// Lines of embedded TLS secrets (pcapng Decryption Secrets Blocks)
    /// that could not be used.
    pub secrets_skipped: u64,
    /// Records produced.
    pub records: u64,
    /// Set when the capture ended mid-packet: every complete packet before
    /// the cut was processed. One line, naming the input.
    pub truncated: Option<String>,
    /// Packets a live capture lost in the kernel / at the interface.
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

/// Chunks of a capture in flight per worker: enough for every worker to
/// have one queued while another is read, few enough to stay in the caches.
const CHUNKS_PER_WORKER: usize = 4;

/// A worker reading a capture reads the next chunk when it has fewer
/// messages than this waiting.
const READ_AHEAD_MESSAGES: usize = 8;

/// Capture time between two broadcasts of the clock to the workers (and
/// between two idle-timeout scans).
const TICK_NANOS: i64 = 1_000_000_000;

/// Memory one tracked TCP connection costs at most, data buffers aside
/// (those have their own caps): reassembly state and timers, and the
/// protocol parser (HTTP/1, HTTP/2, or TLS with one of them inside) the
/// connection gets once it carries data (table slots counted twice, for
/// tables that have just doubled). `--max-flow-memory` divides by this to
/// get the connection cap.
pub fn flow_state_bytes() -> usize {
    let slot = |entry: usize| 2 * (entry + 1);
    Reassembler::conn_state_bytes()
        + slot(std::mem::size_of::<(ConnId, (Flow, bool, u64))>())
        + slot(std::mem::size_of::<(ConnId, app::AppConn)>())
        + app::AppConn::max_state_bytes()
}

/// Reads `input` (a path, or `-` for standard input) to the end on the
/// calling thread and hands every record to `sink` as soon as it is
/// complete.
///
/// A file that is not a capture, or cannot be read, is an error. A capture
/// cut short is not: everything before the cut is processed and
/// [`CaptureReport::truncated`] says so.
pub fn process_capture(
    input: &str,
    config: &CaptureConfig,
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    let reader = CaptureReader::open_with(input, config.reader.clone())?;
    process_reader(reader, config, sink)
}

/// [`process_capture`] over an opened reader.
pub fn process_reader(
    reader: CaptureReader,
    config: &CaptureConfig,
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    process_source(reader, config, sink)
}

/// [`process_capture`] over any packet source, on the calling thread.
pub fn process_source<S: PacketSource>(
    mut source: S,
    config: &CaptureConfig,
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    let input = source.input().to_string();
    let input = input.as_str();
    let source = &mut source;
    let mut decoder = PacketDecoder::new(config.decoder.clone());
    let mut worker = FlowWorker::new(config, input);
    let mut report = CaptureReport {
        input: input.to_string(),
        ..CaptureReport::default()
    };
    let mut clock = Clock::default();
    let mut failure = None;
    loop {
        let now = match source.next() {
            Ok(Next::Packet(packet)) => {
                let ts = packet.ts;
                if let Some(tcp) = decoder.decode(&packet) {
                    worker.segment(&tcp);
                }
                worker.add_secrets(&source.take_secrets());
                ts
            }
            Ok(Next::Idle(now)) => now,
            Ok(Next::End) => break,
            Err(e) if !e.is_fatal() => {
                report.truncated = Some(e.to_string());
                break;
            }
            // What was read before the error is still processed, as the
            // workers of process_capture_sharded do.
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if clock.due(now) {
            worker.advance(now);
            observe_reader(config, source, &decoder, &mut report);
            observe_worker(config, input, 0, &worker);
        }
        report.records += worker.drain(sink);
    }
    decoder.finish();
    worker.finish();
    report.records += worker.drain(sink);
    observe_reader(config, source, &decoder, &mut report);
    observe_worker(config, input, 0, &worker);
    let (reassembly, http) = worker.stats();
    report.reader = source.stats();
    report.decode = decoder.stats().clone();
    report.reassembly = reassembly;
    report.http = http;
    (report.tls, report.http2) = worker.app_stats();
    report.secrets_skipped = worker.http.secret_errors;
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// What a worker thread does with the records of its connections, e.g.
/// detection. One instance per worker; its outputs go to the writer.
pub trait RecordHandler: Send {
    type Output: Send;
    fn on_record(&mut self, record: Record, out: &mut Vec<Self::Output>);
}

/// Sharding and batching of [`process_capture_sharded`].
#[derive(Clone, Copy, Debug)]
pub struct ShardConfig {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Segments per batch sent to a worker.
    pub batch_segments: usize,
    /// Batches waiting per worker before a reading calling thread (live
    /// capture) blocks, and output batches waiting for the writer:
    /// backpressure. A capture is held back by its chunks in flight
    /// instead (4 per worker).
    pub queue_batches: usize,
}

impl Default for ShardConfig {
    fn default() -> ShardConfig {
        ShardConfig {
            workers: 2,
            batch_segments: 512,
            queue_batches: 8,
        }
    }
}

/// Reads `source`, shards its TCP segments by address pair over
/// `shard.workers` threads, each with a handler made by
/// `make_handler(worker_index)`, and passes every output to `output` on one
/// writer thread. See the crate docs.
pub fn process_capture_sharded<S, H, M, W>(
    source: S,
    config: &CaptureConfig,
    shard: ShardConfig,
    make_handler: M,
    output: W,
) -> Result<CaptureReport, CaptureError>
where
    S: PacketSource,
    H: RecordHandler,
    M: Fn(usize) -> H + Sync,
    W: FnMut(H::Output) + Send,
{
    let input = source.input().to_string();
    let mut source = source;
    let feed = match source.into_parts() {
        Ok(parts) => Feed::<S>::Chunks(Box::new(parts)),
        Err(plain) => {
            source = plain;
            Feed::Packets(&mut source)
        }
    };
    run_sharded(&input, config, shard, make_handler, output, feed)
}

/// Where the workers of [`run_sharded`] get their segments from.
enum Feed<'s, S> {
    /// A capture file, read in chunks of whole blocks by whichever worker
    /// runs out of segments ([`SharedReader`]); segments point into the
    /// chunks.
    Chunks(Box<CaptureParts>),
    /// Any other source (pipe, gzip'd capture, live capture), read by the
    /// calling thread; payloads are copied.
    Packets(&'s mut S),
}

/// The threads of [`process_capture_sharded`].
fn run_sharded<S, H, M, W>(
    input: &str,
    config: &CaptureConfig,
    shard: ShardConfig,
    make_handler: M,
    output: W,
    feed: Feed<'_, S>,
) -> Result<CaptureReport, CaptureError>
where
    S: PacketSource,
    H: RecordHandler,
    M: Fn(usize) -> H + Sync,
    W: FnMut(H::Output) + Send,
{
    let workers = shard.workers.max(1);
    let queue = shard.queue_batches.max(1);
    let (out_tx, out_rx) = bounded::<Vec<H::Output>>(workers * queue);
    // The connection and memory caps are for the whole run: each worker
    // gets its share.
    let worker_config = &worker_share(config, workers);
    // Emptied batches and chunk buffers come back to be refilled.
    let (recycle_tx, recycle_rx) = bounded::<SegmentBatch>(workers * (queue + 1));
    // A capture's chunks in flight are bounded by a budget (see
    // `Dispatcher::spare_buffer`), so this channel rarely fills; a buffer
    // that finds it full is freed.
    let max_chunk_units = CHUNKS_PER_WORKER * workers;
    let (spare_tx, spare_rx) = bounded::<Vec<u8>>(max_chunk_units + 1);
    let chunk_size = match &feed {
        Feed::Chunks(parts) => parts.chunks.chunk_size(),
        Feed::Packets(_) => 1,
    };
    let chunked = matches!(feed, Feed::Chunks(_));
    let mut txs: Vec<Sender<WorkerMsg>> = Vec::with_capacity(workers);
    let mut rxs = Vec::with_capacity(workers);
    for _ in 0..workers {
        // Workers reading a capture never wait on each other's channels
        // (the chunk budget is the backpressure); a calling thread that
        // reads does.
        let (tx, rx) = if chunked {
            unbounded::<WorkerMsg>()
        } else {
            bounded::<WorkerMsg>(queue)
        };
        txs.push(tx);
        rxs.push(rx);
    }
    let mut report = CaptureReport {
        input: input.to_string(),
        ..CaptureReport::default()
    };
    let dispatcher = Dispatcher {
        decoder: PacketDecoder::new(config.decoder.clone()),
        batch_segments: shard.batch_segments.max(1),
        batches: (0..workers).map(|_| SegmentBatch::default()).collect(),
        txs,
        own: None,
        recycled: &recycle_rx,
        spare_buffers: &spare_rx,
        spares: Vec::new(),
        chunk_size: chunk_size.max(1),
        in_flight: Vec::new(),
        max_chunk_units,
        clock: Clock::default(),
    };
    let (packets, shared) = match feed {
        Feed::Chunks(parts) => (
            None,
            Some((
                Mutex::new(SharedReader {
                    parts: *parts,
                    d: dispatcher,
                    input,
                    config,
                    failure: None,
                    done: false,
                }),
                Condvar::new(),
            )),
        ),
        Feed::Packets(source) => (Some((source, dispatcher)), None),
    };
    let shared = shared.as_ref();
    let (reading, decode, totals) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut output = output;
            for batch in out_rx {
                for item in batch {
                    output(item);
                }
            }
        });
        let mut handles = Vec::with_capacity(workers);
        for (index, rx) in rxs.into_iter().enumerate() {
            let back = Returns {
                batches: recycle_tx.clone(),
                buffers: spare_tx.clone(),
            };
            let out_tx = out_tx.clone();
            let handler = make_handler(index);
            handles.push(scope.spawn(move || {
                run_worker(
                    worker_config,
                    input,
                    index,
                    rx,
                    shared,
                    handler,
                    out_tx,
                    back,
                )
            }));
        }
        drop(out_tx);
        let mut read_here = None;
        if let Some((source, mut d)) = packets {
            let reading = read_packets(source, config, &mut d, &mut report);
            d.finish();
            observe_reading(config, input, &reading, &d.decoder);
            if let Some((kernel, interface)) = reading.drops {
                report.kernel_drops = kernel;
                report.interface_drops = interface;
            }
            read_here = Some((reading, d.decoder.stats().clone()));
            // Without senders the workers finish.
            drop(d);
        }
        let totals: Vec<WorkerTotals> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        if let Err(panic) = writer.join() {
            std::panic::resume_unwind(panic);
        }
        let (reading, decode) = match read_here {
            Some(read) => read,
            None => match shared.map(|(m, _)| m.lock().unwrap_or_else(PoisonError::into_inner)) {
                Some(mut r) => (r.reading(), r.d.decoder.stats().clone()),
                None => (Reading::default(), DecodeStats::default()),
            },
        };
        (reading, decode, totals)
    });
    report.reader = reading.stats;
    report.decode = decode;
    for totals in totals {
        report.reassembly.merge(&totals.reassembly);
        report.http.merge(&totals.http);
        report.tls.merge(&totals.tls);
        report.http2.merge(&totals.http2);
        report.records += totals.records;
        // Every worker read the same secrets.
        report.secrets_skipped = totals.secrets_skipped;
    }
    match reading.failure {
        Some(e) if !e.is_fatal() => {
            report.truncated = Some(e.with_packets_read(report.reader.packets).to_string());
            Ok(report)
        }
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// A capture read by the workers themselves, one chunk at a time by
/// whichever runs out of segments (under a lock): no thread only reads, so
/// there are as many busy threads as cores, and a worker's own packets in
/// the chunk it read are still in its cache.
struct SharedReader<'a> {
    parts: CaptureParts,
    d: Dispatcher<'a>,
    input: &'a str,
    config: &'a CaptureConfig,
    failure: Option<CaptureError>,
    /// The input is finished and every segment handed out.
    done: bool,
}

impl SharedReader<'_> {
    /// Reads and hands out one chunk for worker `me`, whose own messages
    /// are added to `local` instead of its channel (it is the one waiting
    /// for them).
    ///
    /// Returns `false`, having read nothing, when the chunks in flight use
    /// up the budget: the other workers' queues hold them.
    fn step(&mut self, me: usize, local: &mut VecDeque<WorkerMsg>) -> bool {
        let next = match self.parts.pending.take() {
            Some(chunk) => Ok(Some(chunk)),
            None => match self.d.spare_buffer() {
                Some(buffer) => self.parts.chunks.next_chunk(buffer),
                None => return false,
            },
        };
        let chunk = match next {
            Ok(Some(chunk)) => {
                let units = self.d.units(chunk.buffer_len());
                let chunk = Arc::new(chunk);
                self.d.in_flight.push((Arc::downgrade(&chunk), units));
                chunk
            }
            Ok(None) => {
                self.finish();
                return true;
            }
            Err(e) => {
                self.failure = Some(e);
                self.finish();
                return true;
            }
        };
        self.d.own = Some((me, std::mem::take(local)));
        let mut pos = 0;
        let parser = &mut self.parts.parser;
        loop {
            let at = match parser.next_packet(&chunk, &mut pos) {
                Ok(Some(at)) => at,
                Ok(None) => break,
                Err(e) => {
                    self.failure = Some(e);
                    break;
                }
            };
            let packet = chunk.packet(at);
            self.d.packet(&packet, Some(&chunk));
            self.d.secrets(parser.take_decryption_secrets());
            if self.d.tick(packet.ts) {
                let reading = Reading {
                    stats: parser.stats().clone(),
                    ..Reading::default()
                };
                observe_reading(self.config, self.input, &reading, &self.d.decoder);
            }
        }
        // A batch points into one chunk only.
        self.d.flush_all();
        self.d.reuse(chunk);
        if let Some((_, own)) = self.d.own.take() {
            *local = own;
        }
        if self.failure.is_some() {
            self.finish();
        }
        true
    }

    /// The end of the input (or a failure): the last segments go out, the
    /// reading worker's through its channel, after what it holds.
    fn finish(&mut self) {
        self.d.finish();
        let reading = self.reading_stats();
        observe_reading(self.config, self.input, &reading, &self.d.decoder);
        self.done = true;
    }

    fn reading_stats(&self) -> Reading {
        Reading {
            stats: self.parts.parser.stats().clone(),
            ..Reading::default()
        }
    }

    fn reading(&mut self) -> Reading {
        Reading {
            failure: self.failure.take(),
            ..self.reading_stats()
        }
    }
}

/// Any other source (pipe, gzip'd capture, live capture): the calling
/// thread reads it and each segment's payload is copied.
fn read_packets<S: PacketSource>(
    source: &mut S,
    config: &CaptureConfig,
    d: &mut Dispatcher<'_>,
    report: &mut CaptureReport,
) -> Reading {
    let mut failure = None;
    loop {
        let now = match source.next() {
            Ok(Next::Packet(packet)) => {
                d.packet(&packet, None);
                packet.ts
            }
            Ok(Next::Idle(now)) => now,
            Ok(Next::End) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        d.secrets(source.take_secrets());
        if d.tick(now) {
            observe_reader(config, source, &d.decoder, report);
        }
    }
    Reading {
        stats: source.stats(),
        drops: source.drops(),
        failure,
    }
}

/// The reading side's half of the workers: decodes packets, shards their
/// segments by address pair into one batch per worker, and hands out
/// batches, secrets and clock ticks in input order.
struct Dispatcher<'a> {
    decoder: PacketDecoder,
    batch_segments: usize,
    batches: Vec<SegmentBatch>,
    txs: Vec<Sender<WorkerMsg>>,
    /// The worker doing the reading and its messages, kept aside: it
    /// cannot wait on its own channel.
    own: Option<(usize, VecDeque<WorkerMsg>)>,
    recycled: &'a Receiver<SegmentBatch>,
    spare_buffers: &'a Receiver<Vec<u8>>,
    spares: Vec<Vec<u8>>,
    /// The reader's chunk size, the unit of the budget.
    chunk_size: usize,
    /// Chunks handed out, with their size in units of `chunk_size` (a chunk
    /// grown for a large block counts several); those still held by
    /// someone count against `max_chunk_units`.
    in_flight: Vec<(Weak<Chunk>, usize)>,
    max_chunk_units: usize,
    clock: Clock,
}

impl Dispatcher<'_> {
    /// Queues the segment `packet` carries for its worker; `chunk` is the
    /// chunk the packet lies in, if any, so the payload is shared instead of
    /// copied.
    fn packet(&mut self, packet: &Packet<'_>, chunk: Option<&Arc<Chunk>>) {
        if let Some(tcp) = self.decoder.decode(packet) {
            let w = shard_of(tcp.src, tcp.dst, self.txs.len());
            if let Some(batch) = self.batches.get_mut(w) {
                batch.push(&tcp, chunk);
                if batch.segments.len() >= self.batch_segments {
                    self.flush(w);
                }
            }
        }
    }

    /// TLS secrets found in the input, for every worker, in order with the
    /// segments before them.
    fn secrets(&mut self, secrets: Vec<DecryptionSecrets>) {
        if secrets.is_empty() {
            return;
        }
        let secrets = Arc::new(secrets);
        self.broadcast(|| WorkerMsg::Secrets(Arc::clone(&secrets)));
    }

    /// Capture time has reached `now`; true when the workers were told (once
    /// a second of capture time), which is also when to report progress.
    fn tick(&mut self, now: Timestamp) -> bool {
        let due = self.clock.due(now);
        if due {
            self.broadcast(|| WorkerMsg::Advance(now));
        }
        due
    }

    fn broadcast(&mut self, msg: impl Fn() -> WorkerMsg) {
        for w in 0..self.txs.len() {
            self.flush(w);
            self.deliver(w, msg());
        }
    }

    fn deliver(&mut self, w: usize, msg: WorkerMsg) {
        match &mut self.own {
            Some((me, own)) if *me == w => own.push_back(msg),
            _ => {
                if let Some(tx) = self.txs.get(w) {
                    // A worker only stops early by panicking; its scope
                    // join reports that, so a failed send needs no
                    // handling here.
                    let _ = tx.send(msg);
                }
            }
        }
    }

    fn flush(&mut self, w: usize) {
        let Some(batch) = self.batches.get_mut(w) else {
            return;
        };
        if !batch.segments.is_empty() {
            let fresh = self.recycled.try_recv().unwrap_or_default();
            let batch = std::mem::replace(batch, fresh);
            self.deliver(w, WorkerMsg::Segments(batch));
        }
    }

    fn flush_all(&mut self) {
        for w in 0..self.txs.len() {
            self.flush(w);
        }
    }

    /// The end of the input: everything queued goes out.
    fn finish(&mut self) {
        self.flush_all();
        self.decoder.finish();
    }

    /// A buffer for the next chunk, `None` while the chunks in flight use
    /// up the budget (the reader cannot wait for one while it holds the
    /// lock: see `run_worker`). Buffers every worker is done with are used
    /// again (no allocation or page faults); one grown for a large block is
    /// let go.
    fn spare_buffer(&mut self) -> Option<Vec<u8>> {
        while let Ok(buffer) = self.spare_buffers.try_recv() {
            self.returned(buffer);
        }
        // A chunk counts as long as anyone holds it, whether or not its
        // buffer comes back.
        self.in_flight.retain(|(chunk, _)| chunk.strong_count() > 0);
        let used: usize = self.in_flight.iter().map(|(_, units)| units).sum();
        if used >= self.max_chunk_units {
            return None;
        }
        Some(self.spares.pop().unwrap_or_default())
    }

    /// The buffer of a chunk no worker holds any more, kept for the next
    /// chunk unless it grew for a large block.
    fn returned(&mut self, buffer: Vec<u8>) {
        if buffer.len() <= 2 * self.chunk_size && self.spares.len() < self.max_chunk_units {
            self.spares.push(buffer);
        }
    }

    fn units(&self, len: usize) -> usize {
        len.div_ceil(self.chunk_size).max(1)
    }

    /// Takes back the buffer of `chunk` if the workers are done with it.
    fn reuse(&mut self, chunk: Arc<Chunk>) {
        if let Some(chunk) = Arc::into_inner(chunk) {
            self.returned(chunk.into_buffer());
        }
    }
}

/// The caps of a run shared out over `workers` workers.
fn worker_share(config: &CaptureConfig, workers: usize) -> CaptureConfig {
    let mut c = config.clone();
    let r = &mut c.reassembly;
    r.max_conns = r.max_conns.div_ceil(workers).max(1);
    r.max_buffered_total = (r.max_buffered_total / workers).max(r.max_buffer_per_direction);
    c
}

/// Both directions and every connection between two hosts land on the same
/// worker.
fn shard_of(a: SocketAddr, b: SocketAddr, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    // Computed for every packet: one multiply per address, not one per
    // byte.
    let fold = |ip: std::net::IpAddr| -> u64 {
        match ip {
            std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17)
            }
        }
    };
    let (x, y) = (fold(a.ip()), fold(b.ip()));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let mixed = (lo.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ hi)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        .rotate_left(29);
    // Multiply-shift range reduction: no division.
    ((u128::from(mixed) * workers as u128) >> 64) as usize
}

enum WorkerMsg {
    Segments(SegmentBatch),
    /// TLS secrets found in the input: connections opened from now on can
    /// be decrypted with them.
    Secrets(Arc<Vec<DecryptionSecrets>>),
    /// Capture time has reached this instant: run idle timeouts.
    Advance(Timestamp),
}

/// TCP segments for one worker: their payloads lie in `chunk` (a capture
/// read in chunks) or are packed into `data` (a live capture's packets,
/// reassembled fragments).
#[derive(Default)]
struct SegmentBatch {
    segments: Vec<SegmentMeta>,
    data: Vec<u8>,
    chunk: Option<Arc<Chunk>>,
}

struct SegmentMeta {
    ts: Timestamp,
    number: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    missing: u32,
    /// The payload: `start..end` of the chunk, or of `data`.
    in_chunk: bool,
    start: usize,
    end: usize,
}

impl SegmentBatch {
    fn push(&mut self, tcp: &TcpPacket<'_>, chunk: Option<&Arc<Chunk>>) {
        let shared = match (&tcp.payload, chunk) {
            (Cow::Borrowed(payload), Some(chunk)) if !payload.is_empty() => {
                let same = self.chunk.as_ref().is_none_or(|c| Arc::ptr_eq(c, chunk));
                offset_in(chunk.bytes(), payload)
                    .filter(|_| same)
                    .map(|start| (chunk, start, start + payload.len()))
            }
            _ => None,
        };
        let (in_chunk, start, end) = match shared {
            Some((chunk, start, end)) => {
                self.chunk.get_or_insert_with(|| Arc::clone(chunk));
                (true, start, end)
            }
            None => {
                let start = self.data.len();
                self.data.extend_from_slice(&tcp.payload);
                (false, start, self.data.len())
            }
        };
        self.segments.push(SegmentMeta {
            ts: tcp.ts,
            number: tcp.number,
            src: tcp.src,
            dst: tcp.dst,
            seq: tcp.seq,
            ack: tcp.ack,
            flags: reassembly_flags(tcp),
            missing: tcp.missing,
            in_chunk,
            start,
            end,
        });
    }

    fn payload(&self, m: &SegmentMeta) -> &[u8] {
        let from = if m.in_chunk {
            self.chunk.as_deref().map(Chunk::bytes).unwrap_or_default()
        } else {
            &self.data
        };
        from.get(m.start..m.end).unwrap_or_default()
    }
}

/// Where `part` starts in `whole` when it is a piece of it. Addresses are
/// compared as numbers, no pointer is made from them.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= whole.len()).then_some(start)
}

/// Where a worker hands back what the reading side can fill again.
struct Returns {
    batches: Sender<SegmentBatch>,
    buffers: Sender<Vec<u8>>,
}

fn reassembly_flags(tcp: &TcpPacket<'_>) -> TcpFlags {
    TcpFlags {
        syn: tcp.flags.syn,
        ack: tcp.flags.ack,
        fin: tcp.flags.fin,
        rst: tcp.flags.rst,
        psh: tcp.flags.psh,
    }
}

/// One worker: handles the messages of its channel (and, when it reads the
/// capture itself, its own share of each chunk it reads) until the input is
/// over.
#[allow(clippy::too_many_arguments)]
fn run_worker<H: RecordHandler>(
    config: &CaptureConfig,
    input: &str,
    index: usize,
    rx: Receiver<WorkerMsg>,
    shared: Option<&(Mutex<SharedReader<'_>>, Condvar)>,
    mut handler: H,
    out: Sender<Vec<H::Output>>,
    back: Returns,
) -> WorkerTotals {
    let mut worker = FlowWorker::new(config, input);
    let mut records = 0u64;
    let mut outputs = Vec::new();
    let mut hand_over = |worker: &mut FlowWorker, outputs: &mut Vec<H::Output>| {
        records += worker.drain(&mut |r| handler.on_record(r, outputs));
        if !outputs.is_empty() {
            // The writer only stops when every sender is gone.
            let _ = out.send(std::mem::take(outputs));
        }
    };
    let mut local = VecDeque::new();
    loop {
        // Read the next chunk before running dry, when no one else is
        // reading: waiting for the reader is time lost.
        if let Some((lock, wake)) = shared {
            if local.len() + rx.len() < READ_AHEAD_MESSAGES {
                let reader = match lock.try_lock() {
                    Ok(reader) => Some(reader),
                    Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                };
                if let Some(mut reader) = reader {
                    local.extend(rx.try_iter());
                    if !reader.done && reader.step(index, &mut local) {
                        drop(reader);
                        wake.notify_all();
                    }
                }
            }
        }
        let msg = match local.pop_front() {
            Some(msg) => msg,
            None => match rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match shared {
                    None => match rx.recv() {
                        Ok(msg) => msg,
                        Err(_) => break,
                    },
                    Some((lock, wake)) => {
                        let mut reader = lock.lock().unwrap_or_else(PoisonError::into_inner);
                        loop {
                            // Whatever another worker's chunk gave us
                            // comes before our next one.
                            local.extend(rx.try_iter());
                            if !local.is_empty() || reader.done || reader.step(index, &mut local) {
                                break;
                            }
                            // Every chunk in flight is queued for other
                            // workers: wait for one to be done with one
                            // (the timeout covers a wake-up sent between
                            // our look and our wait).
                            reader = wake
                                .wait_timeout(reader, Duration::from_millis(1))
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        if local.is_empty() && reader.done {
                            break;
                        }
                        drop(reader);
                        // Others may wait for what we just read.
                        wake.notify_all();
                        continue;
                    }
                },
            },
        };
        match msg {
            WorkerMsg::Segments(mut batch) => {
                for m in &batch.segments {
                    let seg = Segment {
                        ts: m.ts,
                        src: m.src,
                        dst: m.dst,
                        seq: m.seq,
                        ack: m.ack,
                        flags: m.flags,
                        payload: batch.payload(m),
                        missing: m.missing,
                    };
                    worker.segment_at(&seg, m.number);
                }
                // Back to the reader, buffers kept: no allocation, page
                // faults or regrowth for the next batch. A full pool just
                // drops it.
                batch.segments.clear();
                batch.data.clear();
                // The last worker done with a chunk returns its buffer.
                if let Some(chunk) = batch.chunk.take().and_then(Arc::into_inner) {
                    let _ = back.buffers.try_send(chunk.into_buffer());
                    if let Some((_, wake)) = shared {
                        wake.notify_all();
                    }
                }
                let _ = back.batches.try_send(batch);
            }
            WorkerMsg::Secrets(secrets) => worker.add_secrets(&secrets),
            WorkerMsg::Advance(ts) => {
                worker.advance(ts);
                observe_worker(config, input, index, &worker);
            }
        }
        hand_over(&mut worker, &mut outputs);
    }
    worker.finish();
    hand_over(&mut worker, &mut outputs);
    observe_worker(config, input, index, &worker);
    let (reassembly, http) = worker.stats();
    let (tls, http2) = worker.app_stats();
    WorkerTotals {
        reassembly,
        http,
        tls,
        http2,
        records,
        secrets_skipped: worker.http.secret_errors,
    }
}

/// What one worker of the reader-thread path processed.
struct WorkerTotals {
    reassembly: ReassemblyStats,
    http: Http1Stats,
    tls: TlsStats,
    http2: Http2Stats,
    records: u64,
    secrets_skipped: u64,
}

/// When to run idle timeouts: once per second of capture time, so the scan
/// of the connection table stays off the hot path.
#[derive(Default)]
struct Clock {
    last: Option<Timestamp>,
}

impl Clock {
    fn due(&mut self, now: Timestamp) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.as_nanos().saturating_sub(t.as_nanos()) >= TICK_NANOS);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// The connections of one thread: reassembly and one HTTP parser per
/// connection.
struct FlowWorker {
    reassembler: Reassembler,
    http: HttpStage,
}

impl FlowWorker {
    fn new(config: &CaptureConfig, input: &str) -> FlowWorker {
        FlowWorker {
            reassembler: Reassembler::new(config.reassembly.clone()),
            http: HttpStage {
                conns: HashMap::default(),
                opened: HashMap::default(),
                setup: app::AppSetup {
                    http1: Arc::new(config.http1.clone()),
                    http2: Arc::new(config.http2.clone()),
                    tls: config.tls.clone(),
                },
                input: input.to_string(),
                packet_number: 0,
                last_ts: Timestamp::default(),
                out: Vec::new(),
                closed_stats: Http1Stats::default(),
                closed_tls: TlsStats::default(),
                closed_http2: Http2Stats::default(),
                secret_errors: 0,
            },
        }
    }

    fn segment(&mut self, tcp: &TcpPacket<'_>) {
        let seg = Segment {
            ts: tcp.ts,
            src: tcp.src,
            dst: tcp.dst,
            seq: tcp.seq,
            ack: tcp.ack,
            flags: reassembly_flags(tcp),
            payload: &tcp.payload,
            missing: tcp.missing,
        };
        self.segment_at(&seg, tcp.number);
    }

    fn segment_at(&mut self, seg: &Segment<'_>, number: u64) {
        self.http.packet_number = number;
        self.http.last_ts = seg.ts;
        self.reassembler.process(seg, &mut self.http);
    }

    fn advance(&mut self, now: Timestamp) {
        self.http.last_ts = self.http.last_ts.max(now);
        self.reassembler.advance(now, &mut self.http);
    }

    fn finish(&mut self) {
        self.reassembler.finish(&mut self.http);
    }

    /// Hands the records produced so far to `sink`; returns how many.
    fn drain(&mut self, sink: &mut dyn FnMut(Record)) -> u64 {
        let n = self.http.out.len() as u64;
        for r in self.http.out.drain(..) {
            sink(r);
        }
        n
    }

    fn stats(&self) -> (ReassemblyStats, Http1Stats) {
        let mut http = self.http.closed_stats.clone();
        for conn in self.http.conns.values() {
            if let Some(s) = conn.http1_stats() {
                http.merge(s);
            }
        }
        (self.reassembler.stats(), http)
    }

    /// Adds TLS secrets (pcapng Decryption Secrets Blocks) to the key log
    /// of connections opened from now on. Unusable lines are counted.
    fn add_secrets(&mut self, secrets: &[DecryptionSecrets]) {
        if secrets.is_empty() {
            return;
        }
        let tls = &mut self.http.setup.tls;
        let mut log = tls.keylog.as_deref().cloned().unwrap_or_default();
        for s in secrets {
            match log.add_secrets(s.secrets_type, &s.data) {
                Ok(errors) => self.http.secret_errors += errors.len() as u64,
                Err(_) => self.http.secret_errors += 1,
            }
        }
        tls.keylog = Some(Arc::new(log));
    }

    /// TLS and HTTP/2 figures of every connection so far.
    fn app_stats(&self) -> (TlsStats, Http2Stats) {
        let mut tls = self.http.closed_tls.clone();
        let mut http2 = self.http.closed_http2.clone();
        for conn in self.http.conns.values() {
            if let Some(t) = conn.tls() {
                tls.merge(t.stats());
            }
            if let Some(h) = conn.http2() {
                http2.merge(h.stats());
            }
        }
        (tls, http2)
    }
}

/// One application parser per reassembled connection (HTTP/1, HTTP/2 or
/// TLS, see [`app`]), made when the connection first carries data: a SYN
/// flood's half-open connections cost only their reassembly state.
struct HttpStage {
    conns: HashMap<ConnId, app::AppConn, FlowHasher>,
    /// Connections opened that have carried no data yet: flow, mid-stream
    /// pickup, position of the packet that opened it.
    opened: HashMap<ConnId, (Flow, bool, u64), FlowHasher>,
    setup: app::AppSetup,
    input: String,
    packet_number: u64,
    /// Capture time of the segment being processed (events without their
    /// own timestamp happen at it).
    last_ts: Timestamp,
    out: Vec<Record>,
    /// Statistics of connections already closed.
    closed_stats: Http1Stats,
    closed_tls: TlsStats,
    closed_http2: Http2Stats,
    /// Lines of embedded TLS secrets that could not be used.
    secret_errors: u64,
}

fn http_dir(dir: shadowmcp_reassembly::Direction) -> shadowmcp_http1::Direction {
    match dir {
        shadowmcp_reassembly::Direction::ToServer => shadowmcp_http1::Direction::ToServer,
        shadowmcp_reassembly::Direction::ToClient => shadowmcp_http1::Direction::ToClient,
    }
}

impl HttpStage {
    /// The parser of `conn`, made on its first data (travelling in `dir`;
    /// its bytes tell which protocol it speaks); and the setup the parsers
    /// share.
    fn conn(
        &mut self,
        conn: ConnId,
        dir: shadowmcp_http1::Direction,
    ) -> Option<(&mut app::AppConn, &app::AppSetup)> {
        if !self.conns.contains_key(&conn) {
            let (flow, midstream, position) = self.opened.remove(&conn)?;
            let origin = Origin {
                input: self.input.clone(),
                position,
            };
            let start = app::ConnStart {
                flow,
                origin,
                midstream,
            };
            let c = app::AppConn::new(start, dir);
            self.conns.insert(conn, c);
        }
        let setup = &self.setup;
        self.conns.get_mut(&conn).map(|c| (c, setup))
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
                self.opened
                    .insert(conn, (flow, midstream, self.packet_number));
            }
            StreamEvent::Data {
                conn,
                dir,
                ts,
                data,
            } => {
                let position = self.packet_number;
                let mut out = std::mem::take(&mut self.out);
                if let Some((c, setup)) = self.conn(conn, http_dir(dir)) {
                    c.set_position(position);
                    c.on_data(setup, http_dir(dir), ts, data, &mut out);
                }
                self.out = out;
            }
            StreamEvent::Gap { conn, dir, len } => {
                let mut out = std::mem::take(&mut self.out);
                if let Some((c, setup)) = self.conn(conn, http_dir(dir)) {
                    c.on_gap(setup, http_dir(dir), len, &mut out);
                }
                self.out = out;
            }
            StreamEvent::Fin { conn, dir } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.on_fin(&self.setup, http_dir(dir), self.last_ts, &mut self.out);
                }
            }
            StreamEvent::Closed { conn, ts, .. } => {
                self.opened.remove(&conn);
                if let Some(mut c) = self.conns.remove(&conn) {
                    c.on_close(&self.setup, ts, &mut self.out);
                    if let Some(s) = c.http1_stats() {
                        self.closed_stats.merge(s);
                    }
                    if let Some(t) = c.tls() {
                        self.closed_tls.merge(t.stats());
                    }
                    if let Some(h) = c.http2() {
                        self.closed_http2.merge(h.stats());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_and_all_ports_of_a_host_pair_share_a_worker() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:443".parse().unwrap();
        let a2: SocketAddr = "10.0.0.1:40001".parse().unwrap();
        for workers in 1..8 {
            let w = shard_of(a, b, workers);
            assert!(w < workers);
            assert_eq!(w, shard_of(b, a, workers));
            assert_eq!(w, shard_of(a2, b, workers));
        }
        // Many host pairs spread over the workers.
        let used: std::collections::HashSet<usize> = (0..64u8)
            .map(|i| {
                let c = SocketAddr::from(([10, 0, 1, i], 5000));
                shard_of(c, b, 4)
            })
            .collect();
        assert_eq!(used.len(), 4);
    }

    #[test]
    fn clock_ticks_once_a_second_of_capture_time() {
        let mut c = Clock::default();
        let s = |x: i64| Timestamp::from_nanos(x * 1_000_000_000);
        assert!(c.due(s(10)));
        assert!(!c.due(s(10)));
        assert!(c.due(s(11)));
        assert!(!c.due(Timestamp::from_nanos(11_500_000_000)));
        assert!(c.due(s(20)));
    }
}
