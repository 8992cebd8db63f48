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
//! [`process_capture_sharded`] spreads the work over worker threads. A
//! plain capture file is read by every worker, each keeping its own
//! address pairs; otherwise (a pipe, a gzip'd capture, live capture) the
//! calling thread reads and decodes packets and shards them by address pair
//! (both directions and every connection between two hosts go to the same
//! worker, so an MCP session spread over several connections is seen in
//! order by one worker); each worker owns its connections' reassembly, HTTP
//! parsing and whatever the caller does with records (detection); one
//! writer thread receives the workers' output. Channels are bounded, so a
//! slow stage slows the reader down instead of dropping packets.
//!
//! Records are the same whatever the thread count: exchange ids are derived
//! from flow ids ([`ExchangeIds::for_flow`]), and idle timeouts run on
//! capture time broadcast to every worker. Only their interleaving differs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use shadowmcp_capture::{
    CaptureError, CaptureReader, DecodeStats, DecoderConfig, DecryptionSecrets, Packet,
    PacketDecoder, ReaderConfig, ReaderStats, TcpPacket,
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
    if let Some((kernel, interface)) = source.drops() {
        report.kernel_drops = kernel;
        report.interface_drops = interface;
    }
    if let Some(o) = &config.observer {
        o.0.reader(source.input(), &source.stats(), decoder.stats());
        if let Some((kernel, interface)) = source.drops() {
            o.0.capture_drops(source.input(), kernel, interface);
        }
    }
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
    /// A file that each worker can open and read on its own (see
    /// [`process_capture_sharded`]); `None` when the source can be read
    /// only once.
    fn reopenable_path(&self) -> Option<&str> {
        None
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

    fn reopenable_path(&self) -> Option<&str> {
        CaptureReader::reopenable_path(self)
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
    drive(&mut source, config, config, &input, (1, 0), sink)
}

/// Reads `source` to its end on this thread, keeping the packets of share
/// `(workers, index)` (all of them for `(1, 0)`), and hands every record to
/// `sink` as soon as it is complete. Share 0 reports the reader's figures.
fn drive<S: PacketSource>(
    source: &mut S,
    config: &CaptureConfig,
    worker_config: &CaptureConfig,
    input: &str,
    (workers, index): (usize, usize),
    sink: &mut dyn FnMut(Record),
) -> Result<CaptureReport, CaptureError> {
    let mut decoder = PacketDecoder::new(config.decoder.clone());
    let mut worker = FlowWorker::new(worker_config, input);
    let mut report = CaptureReport {
        input: input.to_string(),
        ..CaptureReport::default()
    };
    let mut clock = Clock::default();
    loop {
        let now = match source.next() {
            Ok(Next::Packet(packet)) => {
                let ts = packet.ts;
                if let Some(tcp) = decoder.decode(&packet) {
                    if shard_of(tcp.src, tcp.dst, workers) == index {
                        worker.segment(&tcp);
                    }
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
            Err(e) => return Err(e),
        };
        if clock.due(now) {
            worker.advance(now);
            if index == 0 {
                observe_reader(config, source, &decoder, &mut report);
            }
            observe_worker(config, input, index, &worker);
        }
        report.records += worker.drain(sink);
    }
    decoder.finish();
    worker.finish();
    report.records += worker.drain(sink);
    if index == 0 {
        observe_reader(config, source, &decoder, &mut report);
    }
    observe_worker(config, input, index, &worker);
    let (reassembly, http) = worker.stats();
    report.reader = source.stats();
    report.decode = decoder.stats().clone();
    report.reassembly = reassembly;
    report.http = http;
    (report.tls, report.http2) = worker.app_stats();
    report.secrets_skipped = worker.http.secret_errors;
    Ok(report)
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
    /// Batches waiting per worker before the reader blocks (backpressure).
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

/// Reads `reader` on the calling thread, shards its TCP segments by address
/// pair over `shard.workers` threads, each with a handler made by
/// `make_handler(worker_index)`, and passes every output to `output` on one
/// writer thread. See the crate docs.
pub fn process_capture_sharded<S, H, M, W>(
    mut source: S,
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
    let workers = shard.workers.max(1);
    if workers > 1 {
        if let Some(path) = source.reopenable_path().map(str::to_string) {
            drop(source);
            return process_file_sharded(&path, config, workers, make_handler, output);
        }
    }
    let input = source.input().to_string();
    let mut decoder = PacketDecoder::new(config.decoder.clone());
    let (out_tx, out_rx) = bounded::<Vec<H::Output>>(workers * shard.queue_batches.max(1));
    // The connection and memory caps are for the whole run: each worker
    // gets its share.
    let worker_config = &worker_share(config, workers);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut output = output;
            for batch in out_rx {
                for item in batch {
                    output(item);
                }
            }
        });
        // Emptied batches come back to be refilled.
        let (recycle_tx, recycle_rx) =
            bounded::<SegmentBatch>(workers * (shard.queue_batches.max(1) + 1));
        let mut txs: Vec<Sender<WorkerMsg>> = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let (tx, rx) = bounded::<WorkerMsg>(shard.queue_batches.max(1));
            txs.push(tx);
            let out_tx = out_tx.clone();
            let handler = make_handler(index);
            let input = input.as_str();
            let recycle = recycle_tx.clone();
            handles.push(scope.spawn(move || {
                run_worker(worker_config, input, index, rx, handler, out_tx, recycle)
            }));
        }
        drop(out_tx);
        drop(recycle_tx);

        let mut batches: Vec<SegmentBatch> =
            (0..workers).map(|_| SegmentBatch::default()).collect();
        let mut clock = Clock::default();
        let mut report = CaptureReport {
            input: input.clone(),
            ..CaptureReport::default()
        };
        let mut failure = None;
        let flush = |batch: &mut SegmentBatch, tx: &Sender<WorkerMsg>| {
            if !batch.segments.is_empty() {
                let fresh = recycle_rx.try_recv().unwrap_or_default();
                // A worker only stops early by panicking; its scope join
                // reports that, so a failed send needs no handling here.
                let _ = tx.send(WorkerMsg::Segments(std::mem::replace(batch, fresh)));
            }
        };
        loop {
            let now = match source.next() {
                Ok(Next::Packet(packet)) => {
                    let ts = packet.ts;
                    if let Some(tcp) = decoder.decode(&packet) {
                        let w = shard_of(tcp.src, tcp.dst, workers);
                        batches[w].push(&tcp);
                        if batches[w].segments.len() >= shard.batch_segments.max(1) {
                            flush(&mut batches[w], &txs[w]);
                        }
                    }
                    let secrets = source.take_secrets();
                    if !secrets.is_empty() {
                        // In order with the segments already read.
                        let secrets = Arc::new(secrets);
                        for (batch, tx) in batches.iter_mut().zip(&txs) {
                            flush(batch, tx);
                            let _ = tx.send(WorkerMsg::Secrets(secrets.clone()));
                        }
                    }
                    ts
                }
                Ok(Next::Idle(now)) => now,
                Ok(Next::End) => break,
                Err(e) if !e.is_fatal() => {
                    report.truncated = Some(e.to_string());
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if clock.due(now) {
                for (batch, tx) in batches.iter_mut().zip(&txs) {
                    flush(batch, tx);
                    let _ = tx.send(WorkerMsg::Advance(now));
                }
                observe_reader(config, &mut source, &decoder, &mut report);
            }
        }
        decoder.finish();
        observe_reader(config, &mut source, &decoder, &mut report);
        for (batch, tx) in batches.iter_mut().zip(&txs) {
            flush(batch, tx);
        }
        drop(txs);
        report.reader = source.stats();
        report.decode = decoder.stats().clone();
        for h in handles {
            let totals = match h.join() {
                Ok(totals) => totals,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            report.reassembly.merge(&totals.reassembly);
            report.http.merge(&totals.http);
            report.tls.merge(&totals.tls);
            report.http2.merge(&totals.http2);
            report.records += totals.records;
            // Every worker read the same secrets.
            report.secrets_skipped = totals.secrets_skipped;
        }
        if let Err(panic) = writer.join() {
            std::panic::resume_unwind(panic);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    })
}

/// The caps of a run shared out over `workers` workers.
fn worker_share(config: &CaptureConfig, workers: usize) -> CaptureConfig {
    let mut c = config.clone();
    let r = &mut c.reassembly;
    r.max_conns = r.max_conns.div_ceil(workers).max(1);
    r.max_buffered_total = (r.max_buffered_total / workers).max(r.max_buffer_per_direction);
    c
}

/// [`process_capture_sharded`] for a plain capture file: every worker opens
/// and reads the file itself and keeps the packets of its own address
/// pairs. Reading and decoding are cheap next to reassembly, HTTP and
/// detection, and this way no thread copies payloads for others or feeds
/// them through channels (the reader thread had become the bottleneck).
/// Clocks tick from the same packet times in every worker, so the records
/// are those of the single-reader path. Worker 0 reports the reader and
/// decoder figures.
fn process_file_sharded<H, M, W>(
    path: &str,
    config: &CaptureConfig,
    workers: usize,
    make_handler: M,
    output: W,
) -> Result<CaptureReport, CaptureError>
where
    H: RecordHandler,
    M: Fn(usize) -> H + Sync,
    W: FnMut(H::Output) + Send,
{
    let worker_config = &worker_share(config, workers);
    let (out_tx, out_rx) = bounded::<Vec<H::Output>>(workers * 8);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut output = output;
            for batch in out_rx {
                for item in batch {
                    output(item);
                }
            }
        });
        let handles: Vec<_> = (0..workers)
            .map(|index| {
                let out = out_tx.clone();
                let make_handler = &make_handler;
                scope.spawn(move || {
                    read_own_share(
                        path,
                        config,
                        worker_config,
                        workers,
                        index,
                        make_handler(index),
                        out,
                    )
                })
            })
            .collect();
        drop(out_tx);
        let mut report = CaptureReport {
            input: path.to_string(),
            ..CaptureReport::default()
        };
        let mut failure = None;
        for (index, h) in handles.into_iter().enumerate() {
            let part = match h.join() {
                Ok(part) => part,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            match part {
                Ok(part) => {
                    if index == 0 {
                        report.reader = part.reader;
                        report.decode = part.decode;
                        report.truncated = part.truncated;
                        report.secrets_skipped = part.secrets_skipped;
                    }
                    report.reassembly.merge(&part.reassembly);
                    report.http.merge(&part.http);
                    report.tls.merge(&part.tls);
                    report.http2.merge(&part.http2);
                    report.records += part.records;
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Err(panic) = writer.join() {
            std::panic::resume_unwind(panic);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    })
}

/// One worker of [`process_file_sharded`].
fn read_own_share<H: RecordHandler>(
    path: &str,
    config: &CaptureConfig,
    worker_config: &CaptureConfig,
    workers: usize,
    index: usize,
    mut handler: H,
    out: Sender<Vec<H::Output>>,
) -> Result<CaptureReport, CaptureError> {
    let mut source = CaptureReader::open_with(path, config.reader.clone())?;
    let mut outputs = Vec::new();
    drive(
        &mut source,
        config,
        worker_config,
        path,
        (workers, index),
        &mut |record| {
            handler.on_record(record, &mut outputs);
            if !outputs.is_empty() {
                // The writer only stops when every sender is gone.
                let _ = out.send(std::mem::take(&mut outputs));
            }
        },
    )
}

/// Both directions and every connection between two hosts land on the same
/// worker.
fn shard_of(a: SocketAddr, b: SocketAddr, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    // Every worker computes this for every packet when workers read the
    // file themselves: one multiply per address, not one per byte.
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

/// TCP segments copied out of the reader's buffer, payloads packed into one
/// allocation.
#[derive(Default)]
struct SegmentBatch {
    segments: Vec<SegmentMeta>,
    data: Vec<u8>,
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
    start: usize,
    end: usize,
}

impl SegmentBatch {
    fn push(&mut self, tcp: &TcpPacket<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(&tcp.payload);
        self.segments.push(SegmentMeta {
            ts: tcp.ts,
            number: tcp.number,
            src: tcp.src,
            dst: tcp.dst,
            seq: tcp.seq,
            ack: tcp.ack,
            flags: reassembly_flags(tcp),
            missing: tcp.missing,
            start,
            end: self.data.len(),
        });
    }
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

fn run_worker<H: RecordHandler>(
    config: &CaptureConfig,
    input: &str,
    index: usize,
    rx: Receiver<WorkerMsg>,
    mut handler: H,
    out: Sender<Vec<H::Output>>,
    recycle: Sender<SegmentBatch>,
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
    for msg in rx {
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
                        payload: batch.data.get(m.start..m.end).unwrap_or_default(),
                        missing: m.missing,
                    };
                    worker.segment_at(&seg, m.number);
                }
                // Back to the reader, buffers kept: no allocation, page
                // faults or regrowth for the next batch. A full pool just
                // drops it.
                batch.segments.clear();
                batch.data.clear();
                let _ = recycle.try_send(batch);
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
