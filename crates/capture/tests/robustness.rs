//! Property tests: hostile bytes never panic the reader, decoder or
//! defragmenter, memory stays within limits, and input splits do not matter.

mod common;

use std::io::{self, Cursor, Read};

use common::NgBuilder;
use proptest::prelude::*;
use shadowmcp_capture::defrag::{DefragConfig, Defragmenter, Fragment, FragmentKey};
use shadowmcp_capture::writer::{PcapWriter, TcpSegment};
use shadowmcp_capture::{CaptureReader, LinkType, PacketDecoder, ReaderConfig};
use shadowmcp_exchange::Timestamp;

/// Reads and decodes everything; returns the packets' bytes.
fn drain(r: Result<CaptureReader, shadowmcp_capture::CaptureError>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(mut r) = r else { return out };
    let mut d = PacketDecoder::default();
    while let Ok(Some(p)) = r.next_packet() {
        assert!(p.data.len() <= p.orig_len as usize);
        out.push(p.data.to_vec());
        let _ = d.decode(&p);
    }
    d.finish();
    assert!(r.next_packet().unwrap().is_none());
    out
}

fn small_config() -> ReaderConfig {
    ReaderConfig {
        max_block_size: 1 << 16,
        initial_buffer_size: 256,
        max_secrets_bytes: 1024,
    }
}

fn valid_pcap() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for i in 0..4u32 {
        let seg = TcpSegment::new(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        )
        .seq(i * 100)
        .payload(&vec![b'a' + i as u8; 30 + i as usize]);
        w.write_packet(Timestamp::from_nanos(i64::from(i)), &seg.to_ethernet())
            .unwrap();
    }
    w.into_inner()
}

fn valid_pcapng() -> Vec<u8> {
    let seg = TcpSegment::new("[::1]:1000".parse().unwrap(), "[::1]:80".parse().unwrap())
        .payload(b"pcapng payload");
    let mut b = NgBuilder::new();
    b.shb(false)
        .idb(1, Some(9), Some(5))
        .idb(101, None, None)
        .epb(0, 1, &seg.to_ethernet(), 100)
        .epb(1, 2, &seg.to_ip(), 80)
        .dsb(1, b"secret")
        .spb(&seg.to_ethernet());
    b.shb(true).idb(113, None, None).epb(0, 3, b"short", 5);
    b.bytes()
}

/// Hands out the input in the given chunk sizes (cycled).
struct Chunked {
    data: Cursor<Vec<u8>>,
    sizes: Vec<usize>,
    next: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = buf.len().min(size);
        self.data.read(&mut buf[..n])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        drain(CaptureReader::from_reader_with("fuzz", Cursor::new(bytes), small_config()));
    }

    #[test]
    fn arbitrary_bodies_behind_valid_headers(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        kind in 0..4u8,
    ) {
        let mut bytes = match kind {
            0 => valid_pcap()[..24].to_vec(),
            1 => NgBuilder::new().shb(false).bytes(),
            2 => NgBuilder::new().shb(true).bytes(),
            _ => {
                let mut b = NgBuilder::new();
                b.shb(false).idb(1, Some(0x83), None);
                b.bytes()
            }
        };
        bytes.extend_from_slice(&body);
        drain(CaptureReader::from_reader_with("fuzz", Cursor::new(bytes), small_config()));
    }

    #[test]
    fn mutated_valid_captures_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ng in any::<bool>(),
        cut in any::<usize>(),
        gz in any::<bool>(),
    ) {
        let mut bytes = if ng { valid_pcapng() } else { valid_pcap() };
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(1 + cut % bytes.len());
        if gz {
            bytes = common::gzip(&bytes);
        }
        drain(CaptureReader::from_reader_with("fuzz", Cursor::new(bytes), small_config()));
    }

    #[test]
    fn input_splits_do_not_change_packets(
        sizes in proptest::collection::vec(1usize..300, 1..10),
        ng in any::<bool>(),
    ) {
        let bytes = if ng { valid_pcapng() } else { valid_pcap() };
        let whole = drain(CaptureReader::from_reader("w", Cursor::new(bytes.clone())));
        prop_assert!(whole.len() >= 4);
        let chunked = Chunked { data: Cursor::new(bytes), sizes, next: 0 };
        let split = drain(CaptureReader::from_reader_with("c", chunked, small_config()));
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn decoder_never_panics(
        linktype in prop_oneof![
            Just(0u32), Just(1), Just(12), Just(14), Just(101), Just(108),
            Just(113), Just(228), Just(229), Just(276), any::<u32>()
        ],
        data in proptest::collection::vec(any::<u8>(), 0..200),
        extra in 0u32..100_000,
    ) {
        let mut d = PacketDecoder::default();
        let len = data.len() as u32;
        let _ = d.decode_frame(Timestamp::default(), LinkType(linktype), &data, len + extra, 1);
        prop_assert_eq!(d.stats().packets, 1);
    }

    #[test]
    fn decoder_survives_mutated_frames(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        v6 in any::<bool>(),
        ethernet in any::<bool>(),
    ) {
        let (s, d) = if v6 { ("[2001:db8::1]:1", "[2001:db8::2]:2") } else { ("10.0.0.1:1", "10.0.0.2:2") };
        let seg = TcpSegment::new(s.parse().unwrap(), d.parse().unwrap()).payload(b"0123456789abcdef");
        let (lt, mut frame) = if ethernet { (LinkType::ETHERNET, seg.to_ethernet()) } else { (LinkType::RAW, seg.to_ip()) };
        for (at, value) in flips {
            let i = at % frame.len();
            frame[i] = value;
        }
        let mut dec = PacketDecoder::default();
        if let Some(t) = dec.decode_frame(Timestamp::default(), lt, &frame, frame.len() as u32, 1) {
            // Payload always lies within the frame when not reassembled.
            prop_assert!(t.payload.len() < frame.len());
        }
    }

    #[test]
    fn defragmenter_stays_within_limits(
        frags in proptest::collection::vec(
            (0u32..6, 0usize..9000, any::<bool>(), 1usize..1500, any::<u8>(), 0i64..5),
            1..200,
        ),
    ) {
        let config = DefragConfig { max_datagrams: 3, max_bytes: 20_000, timeout_nanos: 2 };
        let mut d = Defragmenter::new(config);
        for (id, offset, more, len, fill, t) in frags {
            let key = FragmentKey { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 6, id };
            let data = vec![fill; len];
            let offset = offset / 8 * 8;
            if let Some(whole) = d.insert(Timestamp::from_nanos(t), Fragment { key, offset, more, data: &data }) {
                prop_assert!(whole.len() <= 65_535);
            }
            prop_assert!(d.bytes() <= 20_000);
            prop_assert!(d.pending() <= 3);
        }
    }
}
