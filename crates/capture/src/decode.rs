//! Decoding captured frames down to TCP segments.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, TcpSlice};
use shadowmcp_exchange::Timestamp;

use crate::defrag::{DefragConfig, Defragmenter, Fragment, FragmentKey};
use crate::{LinkType, Packet};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ tags.
const ETHERTYPE_VLANS: [u16; 4] = [0x8100, 0x88A8, 0x9100, 0x9200];
const PROTO_TCP: u8 = 6;
/// IPv6 extension headers walked before giving up (hostile chains).
const MAX_IPV6_EXT_HEADERS: usize = 16;

/// Limits of a [`PacketDecoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Fragment reassembly limits.
    pub defrag: DefragConfig,
    /// VLAN tags unwrapped at most; deeper stacks are malformed. Default: 8.
    pub max_vlan_depth: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            defrag: DefragConfig::default(),
            max_vlan_depth: 8,
        }
    }
}

/// Why a packet could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedKind {
    /// Link-layer header too short or VLAN stack too deep.
    LinkHeader,
    Ipv4Header,
    Ipv6Header,
    Ipv6ExtHeader,
    /// The IP length field claims more bytes than the frame holds (and the
    /// capture did not cut the frame).
    IpLength,
    /// A fragment the reassembler cannot use (bad size, cut by the
    /// snaplen, nested fragmentation).
    Fragment,
    TcpHeader,
    /// A header cut by the snaplen.
    Truncated,
}

impl MalformedKind {
    pub const ALL: [MalformedKind; 8] = [
        MalformedKind::LinkHeader,
        MalformedKind::Ipv4Header,
        MalformedKind::Ipv6Header,
        MalformedKind::Ipv6ExtHeader,
        MalformedKind::IpLength,
        MalformedKind::Fragment,
        MalformedKind::TcpHeader,
        MalformedKind::Truncated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MalformedKind::LinkHeader => "link_header",
            MalformedKind::Ipv4Header => "ipv4_header",
            MalformedKind::Ipv6Header => "ipv6_header",
            MalformedKind::Ipv6ExtHeader => "ipv6_ext_header",
            MalformedKind::IpLength => "ip_length",
            MalformedKind::Fragment => "fragment",
            MalformedKind::TcpHeader => "tcp_header",
            MalformedKind::Truncated => "truncated",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of a [`PacketDecoder`]. Every packet offered ends up in one of:
/// `tcp_segments`, `unknown_linktype`, `non_ip`, `non_tcp`, a `malformed`
/// kind, or `fragments_seen` (held for reassembly). `ip_length` malformed
/// packets are the exception: they are counted and still decoded, with the
/// bytes the IP header claims but the frame lacks reported as `missing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets offered.
    pub packets: u64,
    /// Captured bytes offered.
    pub bytes: u64,
    /// TCP segments produced.
    pub tcp_segments: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    /// Packets of a link type this crate does not decode.
    pub unknown_linktype: u64,
    /// The same, per link type number.
    pub unknown_linktypes: BTreeMap<u32, u64>,
    /// Link-layer payloads that are not IP (ARP, LLDP…).
    pub non_ip: u64,
    /// IP payloads that are not TCP (UDP, ICMP…).
    pub non_tcp: u64,
    /// Malformed packets, indexed by [`MalformedKind`] (see
    /// [`DecodeStats::malformed`]).
    pub malformed: [u64; 8],
    /// IP fragments offered to reassembly.
    pub fragments_seen: u64,
    /// Datagrams reassembled.
    pub fragments_reassembled: u64,
    /// Datagrams dropped incomplete (timeout or end of input).
    pub fragments_expired: u64,
    /// Datagrams dropped to respect memory limits.
    pub fragments_evicted: u64,
    /// Fragments overlapping earlier data (first data kept).
    pub fragments_overlapping: u64,
    /// Fragments rejected by reassembly (bad size or offset).
    pub fragments_invalid: u64,
    /// Packets the capture cut short (caplen < orig_len).
    pub snaplen_truncated: u64,
}

impl DecodeStats {
    /// Count of one kind of malformed packet.
    pub fn malformed(&self, kind: MalformedKind) -> u64 {
        self.malformed.get(kind.index()).copied().unwrap_or(0)
    }

    /// Malformed packets of every kind.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }

    /// Non-zero malformed counts with their names.
    pub fn malformed_by_kind(&self) -> impl Iterator<Item = (MalformedKind, u64)> + '_ {
        MalformedKind::ALL
            .into_iter()
            .map(|k| (k, self.malformed(k)))
            .filter(|(_, n)| *n > 0)
    }

    /// Adds `other`'s counts to these (several decoders, one report).
    pub fn merge(&mut self, other: &DecodeStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tcp_segments += other.tcp_segments;
        self.ipv4 += other.ipv4;
        self.ipv6 += other.ipv6;
        self.unknown_linktype += other.unknown_linktype;
        for (lt, n) in &other.unknown_linktypes {
            *self.unknown_linktypes.entry(*lt).or_default() += n;
        }
        self.non_ip += other.non_ip;
        self.non_tcp += other.non_tcp;
        for (mine, theirs) in self.malformed.iter_mut().zip(other.malformed.iter()) {
            *mine += theirs;
        }
        self.fragments_seen += other.fragments_seen;
        self.fragments_reassembled += other.fragments_reassembled;
        self.fragments_expired += other.fragments_expired;
        self.fragments_evicted += other.fragments_evicted;
        self.fragments_overlapping += other.fragments_overlapping;
        self.fragments_invalid += other.fragments_invalid;
        self.snaplen_truncated += other.snaplen_truncated;
    }
}

/// TCP control flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

/// One TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    pub ts: Timestamp,
    /// 1-based number of the capture packet that carried (or, for a
    /// reassembled datagram, completed) this segment.
    pub number: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload as captured; owned when it came from fragment reassembly.
    /// Never includes link-layer padding.
    pub payload: Cow<'a, [u8]>,
    /// Payload bytes the capture cut off (snaplen): they follow `payload` in
    /// sequence space but are unknown, so reassembly should record a gap.
    pub missing: u32,
}

/// Decodes captured frames to TCP segments, reassembling IP fragments, and
/// counts everything it skips.
///
/// ```
/// use shadowmcp_capture::{LinkType, PacketDecoder, writer::TcpSegment};
/// let frame = TcpSegment::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:80".parse().unwrap())
///     .payload(b"GET / HTTP/1.1\r\n\r\n")
///     .to_ethernet();
/// let mut decoder = PacketDecoder::default();
/// let seg = decoder
///     .decode_frame(Default::default(), LinkType::ETHERNET, &frame, frame.len() as u32, 1)
///     .unwrap();
/// assert_eq!(seg.dst.port(), 80);
/// assert_eq!(&*seg.payload, b"GET / HTTP/1.1\r\n\r\n");
/// assert_eq!(decoder.stats().tcp_segments, 1);
/// ```
#[derive(Debug, Default)]
pub struct PacketDecoder {
    config: DecoderConfig,
    defrag: Defragmenter,
    stats: DecodeStats,
}

/// Per-frame facts threaded through the layers.
#[derive(Clone, Copy)]
struct Ctx {
    ts: Timestamp,
    number: u64,
    /// The capture cut this frame (caplen < orig_len).
    cut: bool,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Where IPv6 extension headers end.
enum ExtWalk {
    /// Upper-layer protocol and the offset of its header.
    Done { next: u8, offset: usize },
    /// A fragment header: its next header, byte offset, M flag, id, and the
    /// offset of the fragment data.
    Fragment {
        next: u8,
        frag_offset: usize,
        more: bool,
        id: u32,
        offset: usize,
    },
    /// Headers run past the data.
    Short,
    /// Chain too long.
    TooLong,
}

fn walk_ipv6_exts(mut next: u8, data: &[u8]) -> ExtWalk {
    let mut offset = 0usize;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let rest = data.get(offset..).unwrap_or(&[]);
        match next {
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => {
                let (Some(&nh), Some(&len)) = (rest.first(), rest.get(1)) else {
                    return ExtWalk::Short;
                };
                let size = (usize::from(len) + 1) * 8;
                if rest.len() < size {
                    return ExtWalk::Short;
                }
                next = nh;
                offset += size;
            }
            // Fragment.
            44 => {
                let Some(h) = rest.get(..8) else {
                    return ExtWalk::Short;
                };
                let field = u16::from_be_bytes([h[2], h[3]]);
                let frag_offset = usize::from(field & !7);
                let more = field & 1 != 0;
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                next = h[0];
                offset += 8;
                if frag_offset != 0 || more {
                    return ExtWalk::Fragment {
                        next,
                        frag_offset,
                        more,
                        id,
                        offset,
                    };
                }
                // Atomic fragment (RFC 6946): just a header to skip.
            }
            // Authentication header.
            51 => {
                let (Some(&nh), Some(&len)) = (rest.first(), rest.get(1)) else {
                    return ExtWalk::Short;
                };
                let size = (usize::from(len) + 2) * 4;
                if rest.len() < size {
                    return ExtWalk::Short;
                }
                next = nh;
                offset += size;
            }
            _ => return ExtWalk::Done { next, offset },
        }
    }
    ExtWalk::TooLong
}

impl PacketDecoder {
    pub fn new(config: DecoderConfig) -> PacketDecoder {
        PacketDecoder {
            defrag: Defragmenter::new(config.defrag.clone()),
            config,
            stats: DecodeStats::default(),
        }
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Decodes one captured packet; `None` when it carries no TCP segment
    /// (counted in [`DecodeStats`]) or is a fragment still waiting for the
    /// rest of its datagram.
    pub fn decode<'a>(&mut self, packet: &Packet<'a>) -> Option<TcpPacket<'a>> {
        self.decode_frame(
            packet.ts,
            packet.linktype,
            packet.data,
            packet.orig_len,
            packet.number,
        )
    }

    /// [`PacketDecoder::decode`] from the packet's parts.
    pub fn decode_frame<'a>(
        &mut self,
        ts: Timestamp,
        linktype: LinkType,
        data: &'a [u8],
        orig_len: u32,
        number: u64,
    ) -> Option<TcpPacket<'a>> {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        let cut = (orig_len as usize) > data.len();
        if cut {
            self.stats.snaplen_truncated += 1;
        }
        let ctx = Ctx { ts, number, cut };
        match linktype {
            LinkType::ETHERNET => match be16(data, 12) {
                Some(et) => self.ethertype(ctx, et, data.get(14..)?),
                None => self.short(ctx, MalformedKind::LinkHeader),
            },
            LinkType::LINUX_SLL => match be16(data, 14) {
                Some(et) if data.len() >= 16 => self.ethertype(ctx, et, data.get(16..)?),
                _ => self.short(ctx, MalformedKind::LinkHeader),
            },
            LinkType::LINUX_SLL2 => match be16(data, 0) {
                Some(et) if data.len() >= 20 => self.ethertype(ctx, et, data.get(20..)?),
                _ => self.short(ctx, MalformedKind::LinkHeader),
            },
            LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => self.ip_any(ctx, data),
            LinkType::IPV4 => self.ipv4(ctx, data),
            LinkType::IPV6 => self.ipv6(ctx, data),
            LinkType::NULL | LinkType::LOOP => {
                let Some(head) = data.get(..4) else {
                    return self.short(ctx, MalformedKind::LinkHeader);
                };
                let head = [head[0], head[1], head[2], head[3]];
                // NULL stores the family in the capturing host's byte order,
                // which the file does not record: families are small, so the
                // non-zero end tells the order.
                let family = if linktype == LinkType::LOOP || head[0] == 0 {
                    u32::from_be_bytes(head)
                } else {
                    u32::from_le_bytes(head)
                };
                let rest = data.get(4..)?;
                match family {
                    2 => self.ipv4(ctx, rest),
                    // AF_INET6 on BSDs (24), FreeBSD/DragonFly (28), Darwin (30).
                    24 | 28 | 30 => self.ipv6(ctx, rest),
                    _ => {
                        self.stats.non_ip += 1;
                        None
                    }
                }
            }
            other => {
                self.stats.unknown_linktype += 1;
                *self.stats.unknown_linktypes.entry(other.0).or_default() += 1;
                None
            }
        }
    }

    /// Drops fragments still waiting for the rest of their datagram (end of
    /// input); they are counted as expired.
    pub fn finish(&mut self) {
        self.defrag.expire_all();
        self.sync_defrag_stats();
    }

    fn malformed<T>(&mut self, kind: MalformedKind) -> Option<T> {
        if let Some(n) = self.stats.malformed.get_mut(kind.index()) {
            *n += 1;
        }
        None
    }

    /// A header too short for its layer: the capture's doing (snaplen) when
    /// it cut the frame, else the sender's.
    fn short<T>(&mut self, ctx: Ctx, kind: MalformedKind) -> Option<T> {
        self.malformed(if ctx.cut {
            MalformedKind::Truncated
        } else {
            kind
        })
    }

    fn ethertype<'a>(
        &mut self,
        ctx: Ctx,
        mut et: u16,
        mut data: &'a [u8],
    ) -> Option<TcpPacket<'a>> {
        let mut depth = 0;
        while ETHERTYPE_VLANS.contains(&et) {
            depth += 1;
            if depth > self.config.max_vlan_depth {
                return self.malformed(MalformedKind::LinkHeader);
            }
            let Some(inner) = be16(data, 2) else {
                return self.short(ctx, MalformedKind::LinkHeader);
            };
            et = inner;
            data = data.get(4..)?;
        }
        match et {
            ETHERTYPE_IPV4 => self.ipv4(ctx, data),
            ETHERTYPE_IPV6 => self.ipv6(ctx, data),
            _ => {
                self.stats.non_ip += 1;
                None
            }
        }
    }

    fn ip_any<'a>(&mut self, ctx: Ctx, data: &'a [u8]) -> Option<TcpPacket<'a>> {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(ctx, data),
            Some(6) => self.ipv6(ctx, data),
            _ => {
                self.stats.non_ip += 1;
                None
            }
        }
    }

    fn ipv4<'a>(&mut self, ctx: Ctx, data: &'a [u8]) -> Option<TcpPacket<'a>> {
        let header = match Ipv4HeaderSlice::from_slice(data) {
            Ok(h) => h,
            Err(etherparse::err::ipv4::HeaderSliceError::Len(_)) => {
                return self.short(ctx, MalformedKind::Ipv4Header)
            }
            Err(_) => return self.malformed(MalformedKind::Ipv4Header),
        };
        self.stats.ipv4 += 1;
        let header_len = header.slice().len();
        let total = usize::from(header.total_len());
        // Total length 0 is what TSO-offloaded packets captured on the
        // sending host carry: trust the frame then.
        let declared_end = if total == 0 { data.len() } else { total };
        if declared_end < header_len {
            return self.malformed(MalformedKind::Ipv4Header);
        }
        // Trust the IP length (it excludes Ethernet padding), but only up
        // to what was captured.
        let end = declared_end.min(data.len());
        let payload = data.get(header_len..end)?;
        let missing = declared_end - end;
        if missing > 0 && !ctx.cut {
            self.malformed::<()>(MalformedKind::IpLength);
        }
        let src = IpAddr::V4(header.source_addr());
        let dst = IpAddr::V4(header.destination_addr());
        let protocol = header.protocol().0;
        if header.is_fragmenting_payload() {
            let key = FragmentKey {
                src,
                dst,
                protocol,
                id: u32::from(header.identification()),
            };
            let offset = usize::from(header.fragments_offset().value()) * 8;
            return self.fragment(
                ctx,
                key,
                offset,
                header.more_fragments(),
                payload,
                missing,
                0,
            );
        }
        self.transport(ctx, protocol, src, dst, Cow::Borrowed(payload), missing)
    }

    fn ipv6<'a>(&mut self, ctx: Ctx, data: &'a [u8]) -> Option<TcpPacket<'a>> {
        let header = match Ipv6HeaderSlice::from_slice(data) {
            Ok(h) => h,
            Err(etherparse::err::ipv6::HeaderSliceError::Len(_)) => {
                return self.short(ctx, MalformedKind::Ipv6Header)
            }
            Err(_) => return self.malformed(MalformedKind::Ipv6Header),
        };
        self.stats.ipv6 += 1;
        let after = data.get(40..)?;
        let declared = usize::from(header.payload_length());
        // Payload length 0: jumbogram or TSO; trust the frame.
        let declared = if declared == 0 { after.len() } else { declared };
        let body = after.get(..declared.min(after.len()))?;
        let missing = declared - body.len();
        if missing > 0 && !ctx.cut {
            self.malformed::<()>(MalformedKind::IpLength);
        }
        let src = IpAddr::V6(Ipv6Addr::from(header.source()));
        let dst = IpAddr::V6(Ipv6Addr::from(header.destination()));
        match walk_ipv6_exts(header.next_header().0, body) {
            ExtWalk::Done { next, offset } => {
                let payload = body.get(offset..)?;
                self.transport(ctx, next, src, dst, Cow::Borrowed(payload), missing)
            }
            ExtWalk::Fragment {
                next,
                frag_offset,
                more,
                id,
                offset,
            } => {
                let key = FragmentKey {
                    src,
                    dst,
                    protocol: next,
                    id,
                };
                let payload = body.get(offset..)?;
                self.fragment(ctx, key, frag_offset, more, payload, missing, 6)
            }
            ExtWalk::Short | ExtWalk::TooLong => {
                if missing > 0 {
                    self.malformed(MalformedKind::Truncated)
                } else {
                    self.malformed(MalformedKind::Ipv6ExtHeader)
                }
            }
        }
    }

    /// Offers a fragment to reassembly; decodes the datagram it completes.
    /// `version` 6 walks the extension headers of the fragmentable part.
    #[allow(clippy::too_many_arguments)]
    fn fragment<'a>(
        &mut self,
        ctx: Ctx,
        key: FragmentKey,
        offset: usize,
        more: bool,
        data: &[u8],
        missing: usize,
        version: u8,
    ) -> Option<TcpPacket<'a>> {
        self.stats.fragments_seen += 1;
        if missing > 0 {
            // A fragment cut short cannot be placed correctly; its datagram
            // will expire.
            return self.malformed(MalformedKind::Fragment);
        }
        let whole = self.defrag.insert(
            ctx.ts,
            Fragment {
                key,
                offset,
                more,
                data,
            },
        );
        self.sync_defrag_stats();
        let mut whole = whole?;
        let mut protocol = key.protocol;
        if version == 6 {
            match walk_ipv6_exts(key.protocol, &whole) {
                ExtWalk::Done { next, offset } => {
                    protocol = next;
                    whole.drain(..offset.min(whole.len()));
                }
                ExtWalk::Fragment { .. } => return self.malformed(MalformedKind::Fragment),
                ExtWalk::Short | ExtWalk::TooLong => {
                    return self.malformed(MalformedKind::Ipv6ExtHeader)
                }
            }
        }
        self.transport(ctx, protocol, key.src, key.dst, Cow::Owned(whole), 0)
    }

    fn transport<'a>(
        &mut self,
        ctx: Ctx,
        protocol: u8,
        src: IpAddr,
        dst: IpAddr,
        payload: Cow<'a, [u8]>,
        missing: usize,
    ) -> Option<TcpPacket<'a>> {
        if protocol != PROTO_TCP {
            self.stats.non_tcp += 1;
            return None;
        }
        let (fields, header_len) = match TcpSlice::from_slice(&payload) {
            Ok(tcp) => (
                (
                    tcp.source_port(),
                    tcp.destination_port(),
                    tcp.sequence_number(),
                    tcp.acknowledgment_number(),
                    TcpFlags {
                        syn: tcp.syn(),
                        ack: tcp.ack(),
                        fin: tcp.fin(),
                        rst: tcp.rst(),
                        psh: tcp.psh(),
                    },
                    tcp.window_size(),
                ),
                tcp.header_slice().len(),
            ),
            Err(_) if missing > 0 => return self.malformed(MalformedKind::Truncated),
            Err(_) => return self.malformed(MalformedKind::TcpHeader),
        };
        let (sport, dport, seq, ack, flags, window) = fields;
        let data = match payload {
            Cow::Borrowed(b) => Cow::Borrowed(b.get(header_len..)?),
            Cow::Owned(mut v) => {
                v.drain(..header_len.min(v.len()));
                Cow::Owned(v)
            }
        };
        self.stats.tcp_segments += 1;
        Some(TcpPacket {
            ts: ctx.ts,
            number: ctx.number,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            seq,
            ack,
            flags,
            window,
            payload: data,
            missing: u32::try_from(missing).unwrap_or(u32::MAX),
        })
    }

    fn sync_defrag_stats(&mut self) {
        let d = self.defrag.stats();
        self.stats.fragments_reassembled = d.reassembled;
        self.stats.fragments_expired = d.expired;
        self.stats.fragments_evicted = d.evicted;
        self.stats.fragments_overlapping = d.overlapping;
        self.stats.fragments_invalid = d.invalid;
    }
}
