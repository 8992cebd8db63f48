//! Any segmentation, reordering and retransmission of a capture's TCP
//! segments yields the same exchanges as the capture itself.
//!
//! Each real fixture is decoded to TCP segments, every payload is cut at
//! random points, segments within a run of one direction of one connection
//! are shuffled, some are sent twice, and the result is written as a new
//! capture. The exchanges the engine rebuilds from it must equal the
//! original's (everything but timestamps, which move with the reordering).

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use shadowmcp_capture::writer::{PcapWriter, TcpSegment};
use shadowmcp_capture::{CaptureReader, LinkType, PacketDecoder, TcpFlags};
use shadowmcp_engine::{process_reader, CaptureConfig};
use shadowmcp_exchange::{Record, SseEvent, Timestamp};

#[derive(Clone, Debug)]
struct Seg {
    ts: Timestamp,
    seg: TcpSegment,
}

fn segments(path: &str) -> Vec<Seg> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut decoder = PacketDecoder::default();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        if let Some(t) = decoder.decode(&p) {
            let seg = TcpSegment::new(t.src, t.dst)
                .seq(t.seq)
                .ack(t.ack)
                .flags(t.flags)
                .window(t.window)
                .payload(&t.payload);
            out.push(Seg { ts: t.ts, seg });
        }
    }
    out
}

/// What must survive any re-segmentation: every exchange field but time,
/// with its SSE events joined whether they came with the exchange or in
/// later updates (how they are batched depends on the segmentation).
fn summary(records: &[Record]) -> Vec<String> {
    let mut events: HashMap<u64, Vec<SseEvent>> = HashMap::new();
    let mut ended: HashMap<u64, usize> = HashMap::new();
    for r in records {
        match r {
            Record::Exchange(ex) => events
                .entry(ex.id)
                .or_default()
                .extend(ex.response.iter().flat_map(|r| r.sse_events.clone())),
            Record::SseUpdate(up) => {
                events
                    .entry(up.exchange_id)
                    .or_default()
                    .extend(up.events.clone());
                *ended.entry(up.exchange_id).or_default() += usize::from(up.end);
            }
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Exchange(ex) => Some(ex),
            Record::SseUpdate(_) => None,
        })
        .map(|ex| {
            let req = ex.request.as_ref().map(|r| {
                (
                    &r.method,
                    &r.target,
                    &r.headers,
                    text(&r.body.data),
                    &r.trailers,
                )
            });
            let resp = ex
                .response
                .as_ref()
                .map(|r| (r.status, &r.headers, text(&r.body.data), &r.trailers));
            format!(
                "{:?} {req:?} {resp:?} events={:?} ended={:?} {:?}",
                ex.flow.as_ref().map(|f| (f.client, f.server)),
                events.get(&ex.id),
                ended.get(&ex.id),
                ex.flags.names()
            )
        })
        .collect();
    v.sort();
    v
}

/// The items only one side has, shortened, for a readable failure.
fn diff(want: &[String], got: &[String]) -> String {
    let short = |s: &String| s.chars().take(400).collect::<String>();
    let mut out = String::new();
    for w in want.iter().filter(|w| !got.contains(w)) {
        out.push_str(&format!("\n  missing: {}", short(w)));
    }
    for g in got.iter().filter(|g| !want.contains(g)) {
        out.push_str(&format!("\n  unexpected: {}", short(g)));
    }
    out
}

fn run(segs: &[Seg], config: &CaptureConfig) -> Vec<Record> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for s in segs {
        w.write_packet(s.ts, &s.seg.to_ethernet()).unwrap();
    }
    let bytes = w.into_inner();
    let reader =
        CaptureReader::from_reader("resegmented.pcap", std::io::Cursor::new(bytes)).unwrap();
    let mut records = Vec::new();
    process_reader(reader, config, &mut |r| records.push(r)).unwrap();
    records
}

/// The engine's settings for a fixture: its key log, if it has one.
fn config_for(name: &str) -> CaptureConfig {
    let mut config = CaptureConfig::default();
    let keys = fixture(name).replace(".pcap", ".keys");
    if let Ok(bytes) = std::fs::read(&keys) {
        let (log, errors) = shadowmcp_engine::KeyLog::parse_bytes(&bytes);
        assert!(errors.is_empty(), "{keys}: {errors:?}");
        config.tls.keylog = Some(std::sync::Arc::new(log));
    }
    config
}

fn is_data(s: &TcpSegment) -> bool {
    !s.payload.is_empty() && !s.flags.syn && !s.flags.fin && !s.flags.rst
}

/// Cuts payloads at the given points, shuffles runs of data segments of one
/// direction, and repeats some segments.
fn mangle(orig: &[Seg], cuts: &[usize], swaps: &[usize], dups: &[usize]) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::new();
    let mut k = 0usize;
    for s in orig {
        if !is_data(&s.seg) {
            out.push(s.clone());
            continue;
        }
        let p = &s.seg.payload;
        let mut start = 0;
        while start < p.len() {
            let step = 1 + cuts[k % cuts.len()] % p.len().max(1);
            k += 1;
            let end = (start + step).min(p.len());
            let mut piece = s.seg.clone();
            piece.seq = s.seg.seq.wrapping_add(start as u32);
            piece.payload = p[start..end].to_vec();
            if end < p.len() {
                piece.flags = TcpFlags {
                    psh: false,
                    ..piece.flags
                };
            }
            out.push(Seg {
                ts: s.ts,
                seg: piece,
            });
            start = end;
        }
    }
    // Swap neighbours inside runs of data segments of one direction.
    for (i, &at) in swaps.iter().enumerate() {
        if out.len() < 2 {
            break;
        }
        let a = (at + i) % (out.len() - 1);
        let (x, y) = (&out[a].seg, &out[a + 1].seg);
        if is_data(x) && is_data(y) && x.src == y.src && x.dst == y.dst {
            out.swap(a, a + 1);
        }
    }
    for &at in dups {
        if out.is_empty() {
            break;
        }
        let a = at % out.len();
        if is_data(&out[a].seg) {
            let copy = out[a].clone();
            out.insert(a + 1, copy);
        }
    }
    out
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pcap")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

const CAPTURES: &[&str] = &[
    "real/py-streamable-sse.pcap",
    "real/py-legacy-sse.pcap",
    "real/ts-streamable.pcap",
    "real/curl-gzip-chunked.pcap",
    "real/curl-pipelined.pcap",
    // TLS 1.3 decrypted with its key log, HTTP/1.1 and HTTP/2 inside; the
    // same without keys (handshake only); cleartext HTTP/2 (prior
    // knowledge, and Upgrade: h2c).
    "tls/py-streamable-tls.pcap",
    "tls/py-streamable-h2.pcap",
    "tls/known-sni-nokeys.pcap",
    "tls/curl-h2c-prior-knowledge.pcap",
    "tls/curl-h2c-upgrade.pcap",
];

#[test]
fn rewriting_a_capture_unchanged_gives_the_same_exchanges() {
    for name in CAPTURES {
        let segs = segments(&fixture(name));
        let config = config_for(name);
        let mut original = Vec::new();
        let reader = CaptureReader::open(&fixture(name)).unwrap();
        process_reader(reader, &config, &mut |r| original.push(r)).unwrap();
        assert!(!original.is_empty(), "{name}");
        let (got, want) = (summary(&run(&segs, &config)), summary(&original));
        assert!(got == want, "{name}: {}", diff(&want, &got));
    }
}

#[test]
fn byte_by_byte_segments_give_the_same_exchanges() {
    // The protocol of a connection is decided on its first bytes: a
    // ClientHello or an HTTP/2 preface split into one-byte segments must be
    // recognised all the same.
    for name in CAPTURES {
        let segs = segments(&fixture(name));
        let config = config_for(name);
        let expected = summary(&run(&segs, &config));
        let got = summary(&run(&mangle(&segs, &[0], &[], &[]), &config));
        assert!(got == expected, "{name}: {}", diff(&expected, &got));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_segmentation_and_reordering_gives_the_same_exchanges(
        which in 0..CAPTURES.len(),
        cuts in proptest::collection::vec(0usize..2000, 1..40),
        swaps in proptest::collection::vec(0usize..10_000, 0..200),
        dups in proptest::collection::vec(0usize..10_000, 0..20),
    ) {
        let segs = segments(&fixture(CAPTURES[which]));
        let config = config_for(CAPTURES[which]);
        let expected = summary(&run(&segs, &config));
        let mangled = mangle(&segs, &cuts, &swaps, &dups);
        let got = summary(&run(&mangled, &config));
        prop_assert!(got == expected, "{}", diff(&expected, &got));
    }
}
