//! Packet decode: pcap reading and Ethernet/IPv4/TCP decoding of a
//! generated mixed capture.

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::{generate, GenConfig};
use shadowmcp_capture::{CaptureReader, LinkType, PacketDecoder};
use shadowmcp_exchange::Timestamp;

fn capture() -> Vec<u8> {
    let mut pcap = Vec::new();
    let config = GenConfig {
        size: 8 << 20,
        ..GenConfig::default()
    };
    generate(&config, &mut pcap, std::io::sink()).expect("generate");
    pcap
}

fn bench(c: &mut Criterion) {
    let pcap = capture();
    let mut frames: Vec<(Timestamp, Vec<u8>)> = Vec::new();
    let mut reader = CaptureReader::from_reader("bench.pcap", Cursor::new(pcap.clone())).unwrap();
    while let Some(p) = reader.next_packet().unwrap() {
        frames.push((p.ts, p.data.to_vec()));
    }
    let frame_bytes: usize = frames.iter().map(|(_, f)| f.len()).sum();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(frame_bytes as u64));
    g.bench_function("ethernet_ipv4_tcp_frames", |b| {
        b.iter(|| {
            let mut decoder = PacketDecoder::default();
            let mut payload = 0usize;
            for (i, (ts, f)) in frames.iter().enumerate() {
                if let Some(seg) =
                    decoder.decode_frame(*ts, LinkType::ETHERNET, f, f.len() as u32, i as u64 + 1)
                {
                    payload += seg.payload.len();
                }
            }
            black_box(payload)
        })
    });
    g.throughput(Throughput::Bytes(pcap.len() as u64));
    g.bench_function("pcap_read_and_decode", |b| {
        b.iter(|| {
            let mut reader =
                CaptureReader::from_reader("bench.pcap", Cursor::new(pcap.clone())).unwrap();
            let mut decoder = PacketDecoder::default();
            let mut n = 0u64;
            while let Some(p) = reader.next_packet().unwrap() {
                n += u64::from(decoder.decode(&p).is_some());
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
