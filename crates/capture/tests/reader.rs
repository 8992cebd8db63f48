mod common;

use std::io::{self, Cursor, Read};

use common::{gzip, NgBuilder};
use shadowmcp_capture::writer::{PcapFormat, PcapWriter};
use shadowmcp_capture::{
    BlockParser, CaptureError, CaptureFormat, CaptureParts, CaptureReader, LinkType, PacketDecoder,
    ReaderConfig,
};
use shadowmcp_exchange::Timestamp;

/// What a test needs from a packet, owned.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    number: u64,
    ts: i64,
    linktype: LinkType,
    data: Vec<u8>,
    orig_len: u32,
}

/// Reads every packet; returns them and the error that stopped reading.
fn read_all(mut r: CaptureReader) -> (Vec<Seen>, Option<CaptureError>) {
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push(Seen {
                number: p.number,
                ts: p.ts.as_nanos(),
                linktype: p.linktype,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            }),
            Ok(None) => return (out, None),
            Err(e) => {
                // Finished after an error.
                assert!(r.next_packet().unwrap().is_none());
                return (out, Some(e));
            }
        }
    }
}

fn reader(name: &str, bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader(name, Cursor::new(bytes))
}

const T1: i64 = 1_700_000_000_123_456_789;
const T2: i64 = 1_700_000_001_000_001_000;

fn sample_pcap(format: PcapFormat) -> Vec<u8> {
    let mut w = PcapWriter::with_format(Vec::new(), LinkType::ETHERNET, format).unwrap();
    w.write_packet(Timestamp::from_nanos(T1), b"first packet")
        .unwrap();
    w.write_packet_with_len(Timestamp::from_nanos(T2), b"second", 1500)
        .unwrap();
    w.into_inner()
}

#[test]
fn classic_pcap_all_byte_orders_and_resolutions() {
    for big_endian in [false, true] {
        for nanosecond in [false, true] {
            let format = PcapFormat {
                big_endian,
                nanosecond,
                ..PcapFormat::default()
            };
            let r = reader("a.pcap", sample_pcap(format)).unwrap();
            assert_eq!(
                r.format(),
                CaptureFormat::Pcap {
                    big_endian,
                    nanosecond
                }
            );
            let (packets, err) = read_all(r);
            assert!(err.is_none(), "{err:?}");
            let t1 = if nanosecond { T1 } else { T1 / 1000 * 1000 };
            assert_eq!(
                packets,
                vec![
                    Seen {
                        number: 1,
                        ts: t1,
                        linktype: LinkType::ETHERNET,
                        data: b"first packet".to_vec(),
                        orig_len: 12
                    },
                    Seen {
                        number: 2,
                        ts: T2,
                        linktype: LinkType::ETHERNET,
                        data: b"second".to_vec(),
                        orig_len: 1500
                    },
                ]
            );
        }
    }
}

fn multi_section_pcapng() -> Vec<u8> {
    let mut b = NgBuilder::new();
    // Section 1, little-endian: Ethernet in microseconds, raw IP in ns.
    b.shb(false)
        .idb(1, None, None)
        .idb(101, Some(9), None)
        .epb(0, 1_700_000_000_000_001, b"eth-packet", 10)
        .epb(1, 1_700_000_000_000_000_007, b"raw-packet", 10)
        .dsb(0x544c_534b, b"CLIENT_RANDOM 00 11\n")
        .block(0x0000_0004, &[0; 4]) // name resolution, skipped
        .epb(7, 0, b"no such interface", 17)
        .spb(b"simple-1");
    // Section 2, big-endian: SLL with 2^-3 s units and a 100 s offset;
    // interface numbering starts again.
    b.shb(true)
        .idb(113, Some(0x83), Some(100))
        .epb(0, 8 * 5 + 4, b"sll-packet", 10)
        .spb(b"simple-2");
    b.bytes()
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_spb() {
    let mut r = reader("ng.pcapng", multi_section_pcapng()).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    let mut seen = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        seen.push((p.number, p.ts.as_nanos(), p.linktype, p.data.to_vec()));
    }
    let sll_ts = 105_500_000_000;
    assert_eq!(
        seen,
        vec![
            (
                1,
                1_700_000_000_000_001_000,
                LinkType::ETHERNET,
                b"eth-packet".to_vec()
            ),
            (
                2,
                1_700_000_000_000_000_007,
                LinkType::RAW,
                b"raw-packet".to_vec()
            ),
            // SPB: interface 0, last timestamp seen.
            (
                3,
                1_700_000_000_000_000_007,
                LinkType::ETHERNET,
                b"simple-1".to_vec()
            ),
            (4, sll_ts, LinkType::LINUX_SLL, b"sll-packet".to_vec()),
            (5, sll_ts, LinkType::LINUX_SLL, b"simple-2".to_vec()),
        ]
    );
    let stats = r.stats().clone();
    assert_eq!(stats.packets, 5);
    assert_eq!(stats.sections, 2);
    assert_eq!(stats.interfaces, 3);
    assert_eq!(stats.unknown_interface, 1);
    assert_eq!(stats.secrets_blocks, 1);
    assert_eq!(stats.blocks_skipped, 2);
    let secrets = r.take_decryption_secrets();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].secrets_type, 0x544c_534b);
    assert_eq!(secrets[0].data, b"CLIENT_RANDOM 00 11\n");
}

#[test]
fn gzip_is_transparent_including_multi_member() {
    let plain = sample_pcap(PcapFormat::default());
    let (expected, _) = read_all(reader("p", plain.clone()).unwrap());
    let r = reader("a.pcap.gz", gzip(&plain)).unwrap();
    assert!(r.is_gzip());
    let (got, err) = read_all(r);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, expected);

    let ng = multi_section_pcapng();
    let (expected, _) = read_all(reader("p", ng.clone()).unwrap());
    let (a, b) = ng.split_at(37);
    let mut members = gzip(a);
    members.extend_from_slice(&gzip(b));
    let (got, err) = read_all(reader("b.pcapng.gz", members).unwrap());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, expected);
}

fn assert_truncated(err: Option<CaptureError>, packets: u64) -> u64 {
    match err {
        Some(e @ CaptureError::Truncated { .. }) => {
            assert!(!e.is_fatal());
            assert!(e.to_string().contains("truncated"), "{e}");
            let CaptureError::Truncated {
                packets_read,
                offset,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(packets_read, packets);
            offset
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn truncated_pcap_returns_complete_packets_then_warns() {
    let full = sample_pcap(PcapFormat::default());
    // Cut inside the second packet's data, then inside its record header.
    for cut in [full.len() - 2, 24 + 16 + 12 + 5] {
        let (packets, err) = read_all(reader("t.pcap", full[..cut].to_vec()).unwrap());
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].data, b"first packet");
        let offset = assert_truncated(err, 1);
        assert_eq!(offset, 24 + 16 + 12);
    }
    // Cut inside the file header.
    let err = reader("t.pcap", full[..10].to_vec()).unwrap_err();
    assert!(!err.is_fatal());
}

#[test]
fn truncated_pcapng_and_gzip() {
    let ng = multi_section_pcapng();
    let (all, _) = read_all(reader("n", ng.clone()).unwrap());
    let (packets, err) = read_all(reader("t.pcapng", ng[..ng.len() - 3].to_vec()).unwrap());
    assert_eq!(packets.len(), all.len() - 1);
    assert_truncated(err, all.len() as u64 - 1);

    let gz = gzip(&ng);
    let (packets, err) = read_all(reader("t.pcapng.gz", gz[..gz.len() - 12].to_vec()).unwrap());
    assert!(packets.len() < all.len());
    assert_eq!(packets[..], all[..packets.len()]);
    assert_truncated(err, packets.len() as u64);
}

#[test]
fn not_a_capture_and_empty() {
    let err = reader("trace.txt", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()).unwrap_err();
    assert!(err.is_fatal());
    assert_eq!(
        err.to_string(),
        "trace.txt: not a capture file (starts with \"GET / HT\", expected pcap, pcapng or gzip magic)"
    );
    assert!(matches!(err, CaptureError::NotACapture { .. }));

    let err = reader("e.pcap", Vec::new()).unwrap_err();
    assert!(matches!(err, CaptureError::Empty { .. }));
    assert_eq!(err.to_string(), "e.pcap: empty input, not a capture file");

    let err = reader("z.gz", gzip(b"")).unwrap_err();
    assert!(matches!(err, CaptureError::Empty { .. }));

    let err = reader("x.gz", vec![0x1f, 0x8b, 0, 1, 2, 3, 4, 5, 6]).unwrap_err();
    assert!(matches!(err, CaptureError::NotACapture { .. }), "{err:?}");

    let err = reader("short", b"ab".to_vec()).unwrap_err();
    assert!(matches!(err, CaptureError::NotACapture { .. }));

    let err = CaptureReader::open("/nonexistent/dir/x.pcap").unwrap_err();
    assert!(matches!(err, CaptureError::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/dir/x.pcap: "),
        "{err}"
    );
}

/// Returns one byte per read: the reader must cope with any split.
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn byte_by_byte_input_gives_the_same_packets() {
    for bytes in [multi_section_pcapng(), sample_pcap(PcapFormat::default())] {
        let (expected, _) = read_all(reader("x", bytes.clone()).unwrap());
        let r = CaptureReader::from_reader("x", Trickle(Cursor::new(bytes))).unwrap();
        let (got, err) = read_all(r);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, expected);
    }
}

/// Fails after `ok` bytes.
struct Failing {
    data: Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.position() >= self.ok {
            return Err(io::Error::other("disk on fire"));
        }
        let room = (self.ok - self.data.position()) as usize;
        let n = buf.len().min(room);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn read_error_after_complete_packets_is_fatal_and_named() {
    let bytes = sample_pcap(PcapFormat::default());
    let r = CaptureReader::from_reader(
        "f.pcap",
        Failing {
            data: Cursor::new(bytes),
            ok: 24 + 16 + 12 + 3,
        },
    )
    .unwrap();
    let (packets, err) = read_all(r);
    assert_eq!(packets.len(), 1);
    let err = err.unwrap();
    assert!(err.is_fatal());
    assert_eq!(err.to_string(), "f.pcap: disk on fire");
}

#[test]
fn blocks_grow_the_buffer_up_to_the_limit() {
    let big = vec![0xabu8; 300_000];
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    w.write_packet(Timestamp::from_nanos(0), &big).unwrap();
    w.write_packet(Timestamp::from_nanos(0), b"after").unwrap();
    let bytes = w.into_inner();
    let (packets, err) = read_all(reader("big", bytes.clone()).unwrap());
    assert!(err.is_none());
    assert_eq!(packets[0].data, big);
    assert_eq!(packets[1].data, b"after");

    let config = ReaderConfig {
        max_block_size: 100_000,
        ..ReaderConfig::default()
    };
    let r = CaptureReader::from_reader_with("big", Cursor::new(bytes), config).unwrap();
    let (packets, err) = read_all(r);
    assert!(packets.is_empty());
    match err {
        Some(CaptureError::BlockTooLarge { offset, size, .. }) => {
            assert_eq!((offset, size), (24, 300_016));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_length_claim_is_refused_without_reading_it() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    w.write_packet(Timestamp::from_nanos(0), b"ok").unwrap();
    // A record header claiming 4 GiB.
    w.write_raw(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff,
    ])
    .unwrap();
    let (packets, err) = read_all(reader("h.pcap", w.into_inner()).unwrap());
    assert_eq!(packets.len(), 1);
    let err = err.unwrap();
    assert!(
        matches!(err, CaptureError::BlockTooLarge { offset: 42, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("byte 42"), "{err}");
}

#[test]
fn corrupt_pcapng_block_is_malformed_not_a_hang() {
    let mut b = NgBuilder::new();
    b.shb(false).idb(1, None, None).epb(0, 0, b"good", 4);
    let good_len = b.out.len();
    // An EPB whose captured length exceeds its own block.
    b.epb(0, 0, b"abcdefgh", 8);
    let caplen_at = good_len + 8 + 12;
    b.out[caplen_at..caplen_at + 4].copy_from_slice(&4000u32.to_le_bytes());
    b.epb(0, 0, b"never reached", 13);
    let (packets, err) = read_all(reader("c.pcapng", b.bytes()).unwrap());
    assert_eq!(packets.len(), 1);
    match err {
        Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset, good_len as u64),
        other => panic!("{other:?}"),
    }

    // A block length that is not a multiple of 4 / smaller than a header.
    let mut b = NgBuilder::new();
    b.shb(false).idb(1, None, None);
    b.out
        .extend_from_slice(&[6, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0]);
    let (packets, err) = read_all(reader("c.pcapng", b.bytes()).unwrap());
    assert!(packets.is_empty());
    assert!(
        matches!(err, Some(CaptureError::Malformed { .. })),
        "{err:?}"
    );
}

#[test]
fn spb_cut_by_snaplen_excludes_padding() {
    let mut b = NgBuilder::new();
    // 6 captured bytes of a 100-byte packet: the block pads them to 8.
    b.shb(false)
        .idb_snaplen(1, 6, None, None)
        .spb_orig(b"abcdef", 100);
    let (packets, err) = read_all(reader("s.pcapng", b.bytes()).unwrap());
    assert!(err.is_none());
    assert_eq!(packets[0].data, b"abcdef");
    assert_eq!(packets[0].orig_len, 100);
}

#[test]
fn pcapng_bad_byte_order_magic_is_not_a_capture() {
    let mut bytes = NgBuilder::new().shb(false).bytes();
    bytes[8] = 0;
    let err = reader("b.pcapng", bytes).unwrap_err();
    assert!(matches!(err, CaptureError::NotACapture { .. }), "{err:?}");
}

#[test]
fn real_fixture_captures_read_completely() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pcap/real");
    let (mut files, mut total) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("fixtures/pcap/real") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            files += 1;
            let r = CaptureReader::open(path.to_str().unwrap()).unwrap();
            let (packets, err) = read_all(r);
            assert!(err.is_none(), "{path:?}: {err:?}");
            total += packets.len();
            assert!(packets.windows(2).all(|w| w[0].ts <= w[1].ts));
            let mut decoder = PacketDecoder::default();
            for p in &packets {
                decoder.decode_frame(
                    Timestamp::from_nanos(p.ts),
                    p.linktype,
                    &p.data,
                    p.orig_len,
                    p.number,
                );
            }
            let stats = decoder.stats();
            assert_eq!(stats.malformed_total(), 0, "{path:?}: {stats:?}");
            // Every packet is understood: TCP, or deliberately skipped.
            let understood = stats.tcp_segments + stats.non_tcp + stats.non_ip;
            assert_eq!(understood, stats.packets, "{path:?}: {stats:?}");
            assert!(stats.tcp_segments > 0 || packets.is_empty());
        }
    }
    assert!(files > 0 && total > 0);
}

/// Reads `bytes` the way several threads do: one [`ChunkReader`] (after
/// `skip` packets from the whole reader), every chunk parsed by `parsers`
/// clones of the parser; checks every clone saw the same, and returns it.
fn read_in_parts(
    bytes: &[u8],
    chunk_size: usize,
    skip: usize,
    parsers: usize,
) -> (Vec<Seen>, Option<CaptureError>) {
    let config = ReaderConfig {
        initial_buffer_size: chunk_size,
        ..ReaderConfig::default()
    };
    let mut r = CaptureReader::from_reader_with("p", Cursor::new(bytes.to_vec()), config).unwrap();
    let mut first = Vec::new();
    for _ in 0..skip {
        match r.next_packet() {
            Ok(Some(p)) => first.push(seen(&p)),
            Ok(None) => break,
            Err(e) => return (first, Some(e)),
        }
    }
    let CaptureParts {
        mut chunks,
        parser,
        pending,
    } = r.into_parts();
    let mut clones: Vec<(BlockParser, Vec<Seen>, Option<CaptureError>)> = (0..parsers)
        .map(|_| (parser.clone(), first.iter().map(Seen::copy).collect(), None))
        .collect();
    let mut next = pending;
    let mut stop = None;
    let mut buffer = Vec::new();
    loop {
        let chunk = match next.take() {
            Some(chunk) => chunk,
            None => match chunks.next_chunk(std::mem::take(&mut buffer)) {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            },
        };
        assert!(!chunk.is_empty());
        for (parser, out, err) in &mut clones {
            let mut pos = 0;
            loop {
                match parser.next_packet(&chunk, &mut pos) {
                    Ok(Some(at)) => out.push(seen(&chunk.packet(at))),
                    Ok(None) => break,
                    Err(e) => {
                        err.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        buffer = chunk.into_buffer();
    }
    let (parser, out, err) = clones.pop().unwrap();
    for (other, other_out, other_err) in &clones {
        assert_eq!(other_out, &out);
        assert_eq!(other.stats(), parser.stats());
        assert_eq!(format!("{other_err:?}"), format!("{err:?}"));
    }
    let packets = parser.stats().packets;
    (out, err.or(stop.map(|e| e.with_packets_read(packets))))
}

fn seen(p: &shadowmcp_capture::Packet<'_>) -> Seen {
    Seen {
        number: p.number,
        ts: p.ts.as_nanos(),
        linktype: p.linktype,
        data: p.data.to_vec(),
        orig_len: p.orig_len,
    }
}

impl Seen {
    fn copy(&self) -> Seen {
        Seen {
            data: self.data.clone(),
            ..*self
        }
    }
}

/// Captures of every kind, whole and cut, with a block larger than the
/// smallest chunks.
fn assorted_captures() -> Vec<Vec<u8>> {
    let mut big = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    big.write_packet(Timestamp::from_nanos(1), &[7u8; 3000])
        .unwrap();
    big.write_packet(Timestamp::from_nanos(2), b"after")
        .unwrap();
    let big = big.into_inner();
    let ng = multi_section_pcapng();
    let pcap = sample_pcap(PcapFormat::default());
    let mut corrupt = NgBuilder::new();
    corrupt.shb(false).idb(1, None, None).epb(0, 0, b"good", 4);
    let at = corrupt.out.len() + 8 + 12;
    corrupt.epb(0, 0, b"abcdefgh", 8);
    corrupt.out[at..at + 4].copy_from_slice(&4000u32.to_le_bytes());
    vec![
        pcap.clone(),
        pcap[..pcap.len() - 2].to_vec(),
        ng.clone(),
        ng[..ng.len() - 3].to_vec(),
        big.clone(),
        big[..2000].to_vec(),
        corrupt.bytes(),
    ]
}

#[test]
fn parts_parse_exactly_like_the_whole_reader() {
    for (i, bytes) in assorted_captures().iter().enumerate() {
        let (want, want_err) = read_all(reader("p", bytes.clone()).unwrap());
        for chunk_size in [64, 100, 4096, 1 << 20] {
            for skip in [0, 1, 3] {
                let (got, err) = read_in_parts(bytes, chunk_size, skip, 3);
                let at = format!("capture {i}, chunks of {chunk_size}, {skip} read first");
                assert_eq!(got, want, "{at}");
                assert_eq!(format!("{err:?}"), format!("{want_err:?}"), "{at}");
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn any_chunk_size_and_split_point_read_the_same(
        which in 0usize..7,
        chunk_size in 64usize..5000,
        skip in 0usize..6,
    ) {
        let bytes = &assorted_captures()[which];
        let (want, want_err) = read_all(reader("p", bytes.clone()).unwrap());
        let (got, err) = read_in_parts(bytes, chunk_size, skip, 2);
        proptest::prop_assert_eq!(got, want);
        proptest::prop_assert_eq!(format!("{err:?}"), format!("{want_err:?}"));
    }
}

#[test]
fn chunks_hold_whole_blocks_and_bytes_are_counted() {
    let bytes = multi_section_pcapng();
    let config = ReaderConfig {
        initial_buffer_size: 64,
        ..ReaderConfig::default()
    };
    let r = CaptureReader::from_reader_with("p", Cursor::new(bytes.clone()), config).unwrap();
    let CaptureParts {
        mut chunks,
        mut parser,
        pending,
    } = r.into_parts();
    assert!(pending.is_none());
    let mut offset = 0u64;
    let mut buffer = Vec::new();
    while let Some(chunk) = chunks.next_chunk(buffer).unwrap() {
        // Each chunk starts where the last one ended, on a block.
        assert_eq!(chunk.offset(), offset);
        assert!(chunk.buffer_len() >= chunk.len());
        assert_eq!(
            chunk.bytes(),
            &bytes[offset as usize..offset as usize + chunk.len()]
        );
        offset += chunk.len() as u64;
        let mut pos = 0;
        while parser.next_packet(&chunk, &mut pos).unwrap().is_some() {}
        assert_eq!(pos, chunk.len());
        assert_eq!(parser.stats().bytes, offset);
        buffer = chunk.into_buffer();
    }
    assert_eq!(offset, bytes.len() as u64);
}

/// Hands out at most `.1` bytes per read, like a pipe.
struct Piped(Cursor<Vec<u8>>, usize);

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn reads_of_any_size_frame_alike_including_errors() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    for i in 0..400u32 {
        w.write_packet(Timestamp::from_nanos(i64::from(i)), &[i as u8; 700])
            .unwrap();
    }
    let mut bytes = w.into_inner();
    // Record 300's captured length claims 4 GiB, past several reads of a
    // fast pipe (which fill one chunk from many reads).
    let at = 24 + 300 * (16 + 700);
    bytes[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (want, want_err) = read_all(reader("p", bytes.clone()).unwrap());
    assert_eq!(want.len(), 300);
    assert!(
        matches!(want_err, Some(CaptureError::BlockTooLarge { offset, .. }) if offset == at as u64),
        "{want_err:?}"
    );
    for n in [1, 1000, 40 << 10, 64 << 10, 100 << 10] {
        let r = CaptureReader::from_reader("p", Piped(Cursor::new(bytes.clone()), n)).unwrap();
        let (got, err) = read_all(r);
        assert_eq!(got, want, "reads of {n}");
        assert_eq!(format!("{err:?}"), format!("{want_err:?}"), "reads of {n}");
    }
}
