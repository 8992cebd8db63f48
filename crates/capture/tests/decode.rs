mod common;

use std::net::SocketAddr;

use common::{ipv6_ext, ipv6_packet};
use shadowmcp_capture::writer::{ethernet, ipv4_header, TcpSegment};
use shadowmcp_capture::{
    DecodeStats, DecoderConfig, LinkType, MalformedKind, PacketDecoder, TcpFlags,
};
use shadowmcp_exchange::Timestamp;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v4_segment(payload: &[u8]) -> TcpSegment {
    TcpSegment::new(addr("192.0.2.10:51000"), addr("198.51.100.7:8080"))
        .seq(0x1000_0001)
        .ack(0x2000_0002)
        .window(1234)
        .payload(payload)
}

fn v6_segment(payload: &[u8]) -> TcpSegment {
    TcpSegment::new(addr("[2001:db8::1]:51000"), addr("[2001:db8::2]:443")).payload(payload)
}

/// Decodes one whole frame; returns (src, dst, payload, missing) of the
/// TCP segment, if any.
fn decode(
    d: &mut PacketDecoder,
    lt: LinkType,
    frame: &[u8],
) -> Option<(SocketAddr, SocketAddr, Vec<u8>, u32)> {
    d.decode_frame(Timestamp::from_nanos(5), lt, frame, frame.len() as u32, 1)
        .map(|t| (t.src, t.dst, t.payload.into_owned(), t.missing))
}

#[test]
fn ethernet_ipv4_tcp_fields() {
    let seg = v4_segment(b"hello").flags(TcpFlags {
        syn: true,
        ack: true,
        ..TcpFlags::default()
    });
    let frame = seg.to_ethernet();
    let mut d = PacketDecoder::default();
    let t = d
        .decode_frame(
            Timestamp::from_nanos(42),
            LinkType::ETHERNET,
            &frame,
            frame.len() as u32,
            9,
        )
        .unwrap();
    assert_eq!(t.ts, Timestamp::from_nanos(42));
    assert_eq!(t.number, 9);
    assert_eq!(t.src, addr("192.0.2.10:51000"));
    assert_eq!(t.dst, addr("198.51.100.7:8080"));
    assert_eq!((t.seq, t.ack, t.window), (0x1000_0001, 0x2000_0002, 1234));
    assert_eq!(
        t.flags,
        TcpFlags {
            syn: true,
            ack: true,
            ..TcpFlags::default()
        }
    );
    assert_eq!(&*t.payload, b"hello");
    assert_eq!(t.missing, 0);
    let s = d.stats();
    assert_eq!((s.packets, s.tcp_segments, s.ipv4), (1, 1, 1));
    assert_eq!(s.bytes, frame.len() as u64);
}

fn vlan_frame(tags: &[u16], inner: &[u8]) -> Vec<u8> {
    // tags: the TPIDs, outermost first.
    let mut payload = Vec::new();
    for (i, _) in tags.iter().enumerate() {
        let next = tags.get(i + 1).copied().unwrap_or(0x0800);
        payload.extend_from_slice(&[0x00, 0x64 + i as u8]);
        payload.extend_from_slice(&next.to_be_bytes());
    }
    payload.extend_from_slice(inner);
    ethernet(tags[0], &payload)
}

#[test]
fn vlan_and_qinq_stacks() {
    let ip = v4_segment(b"tagged").to_ip();
    let mut d = PacketDecoder::default();
    for tags in [
        vec![0x8100],
        vec![0x88a8, 0x8100],
        vec![0x9100, 0x8100],
        vec![0x9100, 0x88a8, 0x8100],
    ] {
        let got = decode(&mut d, LinkType::ETHERNET, &vlan_frame(&tags, &ip)).unwrap();
        assert_eq!(got.2, b"tagged", "{tags:x?}");
    }
    // Deeper than the configured limit.
    let mut d = PacketDecoder::new(DecoderConfig {
        max_vlan_depth: 2,
        ..DecoderConfig::default()
    });
    assert!(decode(&mut d, LinkType::ETHERNET, &vlan_frame(&[0x8100; 3], &ip)).is_none());
    assert_eq!(d.stats().malformed(MalformedKind::LinkHeader), 1);
}

#[test]
fn linux_cooked_v1_and_v2() {
    let ip = v6_segment(b"sll").to_ip();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 1, 0];
    sll.extend_from_slice(&0x86DDu16.to_be_bytes());
    sll.extend_from_slice(&ip);
    let mut sll2 = 0x86DDu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 1, 0]);
    sll2.extend_from_slice(&ip);
    let mut d = PacketDecoder::default();
    let a = decode(&mut d, LinkType::LINUX_SLL, &sll).unwrap();
    let b = decode(&mut d, LinkType::LINUX_SLL2, &sll2).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.1, addr("[2001:db8::2]:443"));
    assert_eq!(a.2, b"sll");
    // Too short for the cooked header.
    assert!(decode(&mut d, LinkType::LINUX_SLL2, &sll2[..10]).is_none());
    assert_eq!(d.stats().malformed(MalformedKind::LinkHeader), 1);
}

#[test]
fn raw_ip_link_types() {
    let v4 = v4_segment(b"raw4").to_ip();
    let v6 = v6_segment(b"raw6").to_ip();
    let mut d = PacketDecoder::default();
    for lt in [LinkType::RAW, LinkType::RAW_12, LinkType::RAW_14] {
        assert_eq!(decode(&mut d, lt, &v4).unwrap().2, b"raw4");
        assert_eq!(decode(&mut d, lt, &v6).unwrap().2, b"raw6");
    }
    assert_eq!(decode(&mut d, LinkType::IPV4, &v4).unwrap().2, b"raw4");
    assert_eq!(decode(&mut d, LinkType::IPV6, &v6).unwrap().2, b"raw6");
    // IPV4 link type carrying something else is a bad IPv4 header.
    assert!(decode(&mut d, LinkType::IPV4, &v6).is_none());
    assert_eq!(d.stats().malformed(MalformedKind::Ipv4Header), 1);
    assert_eq!(d.stats().tcp_segments, 8);
}

#[test]
fn bsd_null_and_loop() {
    let v4 = v4_segment(b"lo4").to_ip();
    let v6 = v6_segment(b"lo6").to_ip();
    let with = |head: [u8; 4], ip: &[u8]| {
        let mut f = head.to_vec();
        f.extend_from_slice(ip);
        f
    };
    let mut d = PacketDecoder::default();
    // NULL: host byte order, either.
    assert_eq!(
        decode(&mut d, LinkType::NULL, &with([2, 0, 0, 0], &v4))
            .unwrap()
            .2,
        b"lo4"
    );
    assert_eq!(
        decode(&mut d, LinkType::NULL, &with([0, 0, 0, 2], &v4))
            .unwrap()
            .2,
        b"lo4"
    );
    for family in [24u8, 28, 30] {
        let f = with([family, 0, 0, 0], &v6);
        assert_eq!(decode(&mut d, LinkType::NULL, &f).unwrap().2, b"lo6");
        let f = with([0, 0, 0, family], &v6);
        assert_eq!(decode(&mut d, LinkType::NULL, &f).unwrap().2, b"lo6");
    }
    // LOOP: network order.
    assert_eq!(
        decode(&mut d, LinkType::LOOP, &with([0, 0, 0, 2], &v4))
            .unwrap()
            .2,
        b"lo4"
    );
    assert_eq!(
        decode(&mut d, LinkType::LOOP, &with([0, 0, 0, 30], &v6))
            .unwrap()
            .2,
        b"lo6"
    );
    // Unknown family.
    assert!(decode(&mut d, LinkType::NULL, &with([7, 0, 0, 0], &v4)).is_none());
    assert_eq!(d.stats().non_ip, 1);
}

#[test]
fn unknown_link_types_non_ip_and_non_tcp_are_counted() {
    let mut d = PacketDecoder::default();
    assert!(decode(&mut d, LinkType(147), b"whatever").is_none());
    assert!(decode(&mut d, LinkType(147), b"again").is_none());
    assert!(decode(&mut d, LinkType(9999), b"x").is_none());
    // ARP.
    assert!(decode(&mut d, LinkType::ETHERNET, &ethernet(0x0806, &[0; 28])).is_none());
    // UDP.
    let mut udp = ipv4_header([10, 0, 0, 1], [10, 0, 0, 2], 17, 8, 1, 0).to_vec();
    udp.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    assert!(decode(&mut d, LinkType::RAW, &udp).is_none());
    let s = d.stats();
    assert_eq!(s.unknown_linktype, 3);
    assert_eq!(s.unknown_linktypes.get(&147), Some(&2));
    assert_eq!(s.unknown_linktypes.get(&9999), Some(&1));
    assert_eq!((s.non_ip, s.non_tcp, s.tcp_segments), (1, 1, 0));
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A bare ACK is 54 bytes; Ethernet pads it to 60.
    let mut frame = v4_segment(b"").to_ethernet();
    assert_eq!(frame.len(), 54);
    frame.extend_from_slice(&[0xee; 6]);
    let mut d = PacketDecoder::default();
    let got = decode(&mut d, LinkType::ETHERNET, &frame).unwrap();
    assert!(got.2.is_empty());
    assert_eq!(got.3, 0);
    // Also with a short payload.
    let mut frame = v4_segment(b"ab").to_ethernet();
    frame.extend_from_slice(&[0xee; 4]);
    assert_eq!(decode(&mut d, LinkType::ETHERNET, &frame).unwrap().2, b"ab");
    // And IPv6.
    let mut frame = v6_segment(b"").to_ethernet();
    frame.extend_from_slice(&[0xee; 8]);
    assert!(decode(&mut d, LinkType::ETHERNET, &frame)
        .unwrap()
        .2
        .is_empty());
}

#[test]
fn snaplen_cut_reports_missing_bytes() {
    let payload = vec![b'x'; 1000];
    let frame = v4_segment(&payload).to_ethernet();
    let captured = &frame[..200];
    let mut d = PacketDecoder::default();
    let t = d
        .decode_frame(
            Timestamp::default(),
            LinkType::ETHERNET,
            captured,
            frame.len() as u32,
            1,
        )
        .unwrap();
    assert_eq!(t.payload.len(), 200 - 54);
    assert_eq!(t.missing as usize, 1000 - (200 - 54));
    assert_eq!(d.stats().snaplen_truncated, 1);
    assert_eq!(d.stats().malformed_total(), 0);

    // Cut inside the TCP header: counted as truncated, not as a bad header.
    assert!(d
        .decode_frame(
            Timestamp::default(),
            LinkType::ETHERNET,
            &frame[..40],
            frame.len() as u32,
            2
        )
        .is_none());
    assert_eq!(d.stats().malformed(MalformedKind::Truncated), 1);
    // Cut inside the IP header.
    assert!(d
        .decode_frame(
            Timestamp::default(),
            LinkType::ETHERNET,
            &frame[..20],
            frame.len() as u32,
            3
        )
        .is_none());
    assert_eq!(d.stats().malformed(MalformedKind::Truncated), 2);

    // IPv6 too.
    let frame = v6_segment(&payload).to_ethernet();
    let t = d
        .decode_frame(
            Timestamp::default(),
            LinkType::ETHERNET,
            &frame[..300],
            frame.len() as u32,
            4,
        )
        .unwrap();
    assert_eq!(t.payload.len() + t.missing as usize, 1000);
}

#[test]
fn lying_ip_length_is_bounded_by_the_frame() {
    let mut ip = v4_segment(b"abc").to_ip();
    ip[2..4].copy_from_slice(&60_000u16.to_be_bytes());
    let mut d = PacketDecoder::default();
    let got = decode(&mut d, LinkType::RAW, &ip).unwrap();
    assert_eq!(got.2, b"abc");
    assert_eq!(got.3 as usize, 60_000 - ip.len());
    assert_eq!(d.stats().malformed(MalformedKind::IpLength), 1);
    // Total length 0 (TSO on the capturing host): the frame is trusted.
    ip[2..4].copy_from_slice(&[0, 0]);
    let got = decode(&mut d, LinkType::RAW, &ip).unwrap();
    assert_eq!((got.2.as_slice(), got.3), (&b"abc"[..], 0));
    // Total length shorter than the header.
    ip[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert!(decode(&mut d, LinkType::RAW, &ip).is_none());
    assert_eq!(d.stats().malformed(MalformedKind::Ipv4Header), 1);
}

#[test]
fn ipv4_options_are_skipped() {
    let seg = v4_segment(b"with options");
    let tcp = seg.tcp_bytes();
    let mut ip = ipv4_header([192, 0, 2, 10], [198, 51, 100, 7], 6, tcp.len() + 4, 1, 0).to_vec();
    ip[0] = 0x46; // IHL 6: one 4-byte option word (checksum not verified)
    ip.extend_from_slice(&[1, 1, 1, 0]); // NOP, NOP, NOP, EOL
    ip.extend_from_slice(&tcp);
    let mut d = PacketDecoder::default();
    assert_eq!(
        decode(&mut d, LinkType::RAW, &ip).unwrap().2,
        b"with options"
    );
}

#[test]
fn cut_frames_blame_the_snaplen_only_for_lengths() {
    let mut d = PacketDecoder::default();
    let frame = v4_segment(b"x").to_ethernet();
    // Cut inside the IP header: truncated.
    d.decode_frame(
        Timestamp::default(),
        LinkType::ETHERNET,
        &frame[..25],
        100,
        1,
    );
    assert_eq!(d.stats().malformed(MalformedKind::Truncated), 1);
    // A wrong IP version is the sender's fault even in a cut frame.
    let mut bad = frame[..40].to_vec();
    bad[14] = 0x55;
    d.decode_frame(Timestamp::default(), LinkType::ETHERNET, &bad, 100, 2);
    assert_eq!(d.stats().malformed(MalformedKind::Ipv4Header), 1);
    assert_eq!(d.stats().malformed(MalformedKind::Truncated), 1);
}

#[test]
fn malformed_headers_are_counted_by_kind() {
    let mut d = PacketDecoder::default();
    let mut ip = v4_segment(b"x").to_ip();
    ip[0] = 0x43; // IHL 3
    assert!(decode(&mut d, LinkType::RAW, &ip).is_none());
    let mut ip = v4_segment(b"x").to_ip();
    ip[20 + 12] = 0x30; // TCP data offset 3
    assert!(decode(&mut d, LinkType::RAW, &ip).is_none());
    assert!(decode(&mut d, LinkType::ETHERNET, &[0; 10]).is_none());
    let v6 = v6_segment(b"x").to_ip();
    assert!(decode(&mut d, LinkType::IPV6, &v6[..30]).is_none());
    let s = d.stats();
    assert_eq!(s.malformed(MalformedKind::Ipv4Header), 1);
    assert_eq!(s.malformed(MalformedKind::TcpHeader), 1);
    assert_eq!(s.malformed(MalformedKind::LinkHeader), 1);
    assert_eq!(s.malformed(MalformedKind::Ipv6Header), 1);
    let names: Vec<_> = s
        .malformed_by_kind()
        .map(|(k, n)| (k.as_str(), n))
        .collect();
    assert_eq!(
        names,
        vec![
            ("link_header", 1),
            ("ipv4_header", 1),
            ("ipv6_header", 1),
            ("tcp_header", 1)
        ]
    );
}

/// Splits `seg`'s IPv4 payload (TCP header + data) into fragments of
/// `size` bytes (a multiple of 8).
fn ipv4_fragments(seg: &TcpSegment, size: usize, id: u16) -> Vec<Vec<u8>> {
    let tcp = seg.tcp_bytes();
    let chunks: Vec<_> = tcp.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            let frag = more | (i * size / 8) as u16;
            let mut p =
                ipv4_header([192, 0, 2, 10], [198, 51, 100, 7], 6, c.len(), id, frag).to_vec();
            p.extend_from_slice(c);
            ethernet(0x0800, &p)
        })
        .collect()
}

#[test]
fn ipv4_fragments_out_of_order_give_one_segment() {
    let payload: Vec<u8> = (0..200u8).collect();
    let seg = v4_segment(&payload);
    let frags = ipv4_fragments(&seg, 64, 77);
    assert_eq!(frags.len(), 4);
    let mut d = PacketDecoder::default();
    for i in [3, 1, 0] {
        assert!(decode(&mut d, LinkType::ETHERNET, &frags[i]).is_none());
    }
    // An unrelated datagram with another id in between.
    let other = ipv4_fragments(
        &v4_segment(b"other datagram, longer than one fragment"),
        16,
        78,
    );
    assert!(decode(&mut d, LinkType::ETHERNET, &other[0]).is_none());
    let got = decode(&mut d, LinkType::ETHERNET, &frags[2]).unwrap();
    assert_eq!(got.0, addr("192.0.2.10:51000"));
    assert_eq!(got.2, payload);
    let s = d.stats();
    assert_eq!(
        (s.fragments_seen, s.fragments_reassembled, s.tcp_segments),
        (5, 1, 1)
    );
    d.finish();
    assert_eq!(d.stats().fragments_expired, 1);
}

#[test]
fn ipv4_fragment_cut_by_snaplen_is_not_reassembled() {
    let seg = v4_segment(&[7u8; 100]);
    let frags = ipv4_fragments(&seg, 64, 5);
    let mut d = PacketDecoder::default();
    let f = &frags[0];
    assert!(d
        .decode_frame(
            Timestamp::default(),
            LinkType::ETHERNET,
            &f[..50],
            f.len() as u32,
            1
        )
        .is_none());
    assert!(decode(&mut d, LinkType::ETHERNET, &frags[1]).is_none());
    assert_eq!(d.stats().malformed(MalformedKind::Fragment), 1);
    assert_eq!(d.stats().fragments_reassembled, 0);
}

const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

#[test]
fn ipv6_extension_headers_are_skipped() {
    let tcp = v6_segment(b"through ext headers").tcp_bytes();
    // Hop-by-hop → routing → destination options → TCP.
    let mut body = ipv6_ext(43);
    body.extend(ipv6_ext(60));
    body.extend(ipv6_ext(6));
    body.extend_from_slice(&tcp);
    let packet = ipv6_packet(SRC6, DST6, 0, &body);
    let mut d = PacketDecoder::default();
    let got = decode(&mut d, LinkType::RAW, &packet).unwrap();
    assert_eq!(got.2, b"through ext headers");
    assert_eq!(got.1, addr("[2001:db8::2]:443"));
    // An atomic fragment header (offset 0, no M flag) is skipped too.
    let mut body = vec![6, 0, 0, 0, 0, 0, 0, 9];
    body.extend_from_slice(&tcp);
    let got = decode(&mut d, LinkType::RAW, &ipv6_packet(SRC6, DST6, 44, &body)).unwrap();
    assert_eq!(got.2, b"through ext headers");
    // Extension header running past the packet.
    let packet = ipv6_packet(SRC6, DST6, 60, &[6, 9, 0, 0, 0, 0, 0, 0]);
    assert!(decode(&mut d, LinkType::RAW, &packet).is_none());
    // ESP: not TCP.
    let packet = ipv6_packet(SRC6, DST6, 50, &[0; 16]);
    assert!(decode(&mut d, LinkType::RAW, &packet).is_none());
    let s = d.stats();
    assert_eq!(s.malformed(MalformedKind::Ipv6ExtHeader), 1);
    assert_eq!(s.non_tcp, 1);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let payload = vec![b'z'; 150];
    let tcp = v6_segment(&payload).tcp_bytes();
    // Fragmentable part: a destination options header, then TCP.
    let mut part = ipv6_ext(6);
    part.extend_from_slice(&tcp);
    let chunks: Vec<_> = part.chunks(96).collect();
    let mut d = PacketDecoder::default();
    let mut result = None;
    for (i, c) in chunks.iter().enumerate().rev() {
        let more = u16::from(i + 1 < chunks.len());
        let field = ((i * 96) as u16) | more;
        let mut body = vec![60, 0];
        body.extend_from_slice(&field.to_be_bytes());
        body.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        body.extend_from_slice(c);
        // Hop-by-hop before the fragment header (unfragmentable part).
        let mut full = ipv6_ext(44);
        full.extend_from_slice(&body);
        let packet = ipv6_packet(SRC6, DST6, 0, &full);
        result = decode(&mut d, LinkType::RAW, &packet);
        assert_eq!(result.is_some(), i == 0);
    }
    let got = result.unwrap();
    assert_eq!(got.2, payload);
    assert_eq!(got.0, addr("[2001:db8::1]:51000"));
    assert_eq!(d.stats().fragments_reassembled, 1);
}

#[test]
fn stats_merge_adds_everything() {
    let mut a = PacketDecoder::default();
    let mut b = PacketDecoder::default();
    decode(&mut a, LinkType::ETHERNET, &v4_segment(b"a").to_ethernet()).unwrap();
    decode(&mut b, LinkType(5), b"?");
    decode(&mut b, LinkType::ETHERNET, &[1]);
    let mut total = DecodeStats::default();
    total.merge(a.stats());
    total.merge(b.stats());
    total.merge(b.stats());
    assert_eq!(total.packets, 5);
    assert_eq!(total.tcp_segments, 1);
    assert_eq!(total.unknown_linktypes.get(&5), Some(&2));
    assert_eq!(total.malformed(MalformedKind::LinkHeader), 2);
    assert_eq!(total.bytes, a.stats().bytes + 2 * b.stats().bytes);
}
