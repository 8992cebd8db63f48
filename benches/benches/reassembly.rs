//! TCP reassembly of a generated mixed capture, in order and with every
//! second data segment of each direction delivered before its predecessor.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Cursor;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::{generate, GenConfig};
use shadowmcp_capture::{CaptureReader, PacketDecoder};
use shadowmcp_exchange::Timestamp;
use shadowmcp_reassembly::{Reassembler, Segment, StreamEvent, TcpFlags};

struct Owned {
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

fn segments() -> Vec<Owned> {
    let mut pcap = Vec::new();
    let config = GenConfig {
        size: 8 << 20,
        ..GenConfig::default()
    };
    generate(&config, &mut pcap, std::io::sink()).expect("generate");
    let mut reader = CaptureReader::from_reader("bench.pcap", Cursor::new(pcap)).unwrap();
    let mut decoder = PacketDecoder::default();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        if let Some(t) = decoder.decode(&p) {
            let f = &t.flags;
            let flags = u8::from(f.fin)
                | u8::from(f.syn) << 1
                | u8::from(f.rst) << 2
                | u8::from(f.psh) << 3
                | u8::from(f.ack) << 4;
            out.push(Owned {
                ts: t.ts,
                src: t.src,
                dst: t.dst,
                seq: t.seq,
                ack: t.ack,
                flags,
                payload: t.payload.to_vec(),
            });
        }
    }
    out
}

/// Swaps each second data segment of a direction with the one before it
/// (when no ACK from the receiver lies between them).
fn out_of_order(segs: &mut [Owned]) {
    let mut pending: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    for i in 0..segs.len() {
        if segs[i].payload.is_empty() {
            // An ACK from the receiver between the two would acknowledge
            // past the hole and make it a capture loss: pair only segments
            // the receiver has not acknowledged in between.
            pending.remove(&(segs[i].dst, segs[i].src));
            continue;
        }
        let key = (segs[i].src, segs[i].dst);
        match pending.remove(&key) {
            Some(j) => {
                // Keep timestamps in capture order; only contents move.
                let (ts_i, ts_j) = (segs[i].ts, segs[j].ts);
                segs.swap(i, j);
                segs[i].ts = ts_i;
                segs[j].ts = ts_j;
            }
            None => {
                pending.insert(key, i);
            }
        }
    }
}

fn run(segs: &[Owned]) -> u64 {
    let mut r = Reassembler::default();
    let mut bytes = 0u64;
    let mut sink = |ev: StreamEvent<'_>| {
        if let StreamEvent::Data { data, .. } = ev {
            bytes += data.len() as u64;
        }
    };
    for s in segs {
        let seg = Segment {
            ts: s.ts,
            src: s.src,
            dst: s.dst,
            seq: s.seq,
            ack: s.ack,
            flags: TcpFlags::from_bits(s.flags),
            payload: &s.payload,
            missing: 0,
        };
        r.process(&seg, &mut sink);
    }
    r.finish(&mut sink);
    bytes
}

fn bench(c: &mut Criterion) {
    let in_order = segments();
    let payload: u64 = in_order.iter().map(|s| s.payload.len() as u64).sum();
    let mut ooo = segments();
    out_of_order(&mut ooo);
    // Both deliver every byte: the benchmark compares like with like.
    assert_eq!(run(&in_order), payload);
    assert_eq!(run(&ooo), payload);

    let mut g = c.benchmark_group("reassembly");
    g.throughput(Throughput::Bytes(payload));
    g.bench_function("in_order", |b| b.iter(|| black_box(run(&in_order))));
    g.bench_function("out_of_order_pairs", |b| b.iter(|| black_box(run(&ooo))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
