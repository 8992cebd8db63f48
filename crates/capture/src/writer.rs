//! Tiny capture and packet builders for tests and benchmarks.
//!
//! [`PcapWriter`] writes a classic pcap file with one link type; [`TcpSegment`]
//! builds a valid TCP segment (checksums included) as raw IP or as an
//! Ethernet frame. Together they make synthetic, adversarial or edge-case
//! captures without fixture files:
//!
//! ```
//! use shadowmcp_capture::writer::{PcapWriter, TcpSegment};
//! use shadowmcp_capture::{CaptureReader, LinkType, PacketDecoder};
//! use shadowmcp_exchange::Timestamp;
//!
//! let seg = TcpSegment::new("192.0.2.1:50000".parse().unwrap(), "192.0.2.2:443".parse().unwrap())
//!     .seq(1000)
//!     .payload(b"hello");
//! let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
//! w.write_packet(Timestamp::from_nanos(1_000), &seg.to_ethernet()).unwrap();
//! let pcap = w.into_inner();
//!
//! let mut reader = CaptureReader::from_reader("t.pcap", std::io::Cursor::new(pcap)).unwrap();
//! let mut decoder = PacketDecoder::default();
//! let packet = reader.next_packet().unwrap().unwrap();
//! let tcp = decoder.decode(&packet).unwrap();
//! assert_eq!((tcp.seq, &*tcp.payload), (1000, &b"hello"[..]));
//! ```

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use shadowmcp_exchange::Timestamp;

use crate::{LinkType, TcpFlags};

/// Header options of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapFormat {
    pub big_endian: bool,
    /// Nanosecond timestamps (magic `a1b23c4d`) instead of microseconds.
    pub nanosecond: bool,
    pub snaplen: u32,
}

impl Default for PcapFormat {
    fn default() -> Self {
        PcapFormat {
            big_endian: false,
            nanosecond: false,
            snaplen: 262_144,
        }
    }
}

/// Writes a classic pcap file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    format: PcapFormat,
}

impl<W: Write> PcapWriter<W> {
    /// Little-endian, microsecond timestamps, snaplen 262144.
    pub fn new(out: W, linktype: LinkType) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_format(out, linktype, PcapFormat::default())
    }

    pub fn with_format(
        out: W,
        linktype: LinkType,
        format: PcapFormat,
    ) -> io::Result<PcapWriter<W>> {
        let mut w = PcapWriter { out, format };
        let magic: u32 = if format.nanosecond {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        };
        w.u32(magic)?;
        w.u16(2)?;
        w.u16(4)?;
        w.u32(0)?; // thiszone
        w.u32(0)?; // sigfigs
        w.u32(format.snaplen)?;
        w.u32(linktype.0)?;
        Ok(w)
    }

    /// Writes a packet captured whole.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_packet_with_len(ts, data, len)
    }

    /// Writes a packet whose original length was `orig_len` (more than
    /// `data.len()` simulates a snaplen cut).
    pub fn write_packet_with_len(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let frac = if self.format.nanosecond {
            ts.subsec_nanos()
        } else {
            ts.subsec_nanos() / 1000
        };
        self.u32(ts.secs() as u32)?;
        self.u32(frac)?;
        self.u32(u32::try_from(data.len()).unwrap_or(u32::MAX))?;
        self.u32(orig_len)?;
        self.out.write_all(data)
    }

    /// Writes raw bytes (to build corrupt files).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn u32(&mut self, v: u32) -> io::Result<()> {
        if self.format.big_endian {
            self.out.write_all(&v.to_be_bytes())
        } else {
            self.out.write_all(&v.to_le_bytes())
        }
    }

    fn u16(&mut self, v: u16) -> io::Result<()> {
        if self.format.big_endian {
            self.out.write_all(&v.to_be_bytes())
        } else {
            self.out.write_all(&v.to_le_bytes())
        }
    }
}

/// Builds one TCP segment. Defaults: seq 0, ack 0, flags ACK+PSH, window
/// 65535, empty payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload: Vec<u8>,
}

impl TcpSegment {
    pub fn new(src: SocketAddr, dst: SocketAddr) -> TcpSegment {
        TcpSegment {
            src,
            dst,
            seq: 0,
            ack: 0,
            flags: TcpFlags {
                ack: true,
                psh: true,
                ..TcpFlags::default()
            },
            window: 65_535,
            payload: Vec::new(),
        }
    }

    pub fn seq(mut self, seq: u32) -> TcpSegment {
        self.seq = seq;
        self
    }

    pub fn ack(mut self, ack: u32) -> TcpSegment {
        self.ack = ack;
        self
    }

    pub fn flags(mut self, flags: TcpFlags) -> TcpSegment {
        self.flags = flags;
        self
    }

    pub fn window(mut self, window: u16) -> TcpSegment {
        self.window = window;
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> TcpSegment {
        self.payload = payload.to_vec();
        self
    }

    /// TCP header and payload, with the checksum for this address pair.
    pub fn tcp_bytes(&self) -> Vec<u8> {
        let mut t = Vec::with_capacity(20 + self.payload.len());
        t.extend_from_slice(&self.src.port().to_be_bytes());
        t.extend_from_slice(&self.dst.port().to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        let f = &self.flags;
        let bits = u8::from(f.fin)
            | u8::from(f.syn) << 1
            | u8::from(f.rst) << 2
            | u8::from(f.psh) << 3
            | u8::from(f.ack) << 4;
        t.extend_from_slice(&[5 << 4, bits]);
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        t.extend_from_slice(&self.payload);
        let mut pseudo = Vec::with_capacity(40);
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                pseudo.extend_from_slice(&s.octets());
                pseudo.extend_from_slice(&d.octets());
                pseudo.extend_from_slice(&[0, 6]);
                pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
            }
            (s, d) => {
                pseudo.extend_from_slice(&v6_octets(s));
                pseudo.extend_from_slice(&v6_octets(d));
                pseudo.extend_from_slice(&(t.len() as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 6]);
            }
        }
        let sum = checksum(&[&pseudo, &t]);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        t
    }

    /// The segment in an IPv4 packet (both addresses IPv4) or else an IPv6
    /// one (IPv4 addresses mapped).
    pub fn to_ip(&self) -> Vec<u8> {
        let tcp = self.tcp_bytes();
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut p = ipv4_header(s.octets(), d.octets(), 6, tcp.len(), 0, 0).to_vec();
                p.extend_from_slice(&tcp);
                p
            }
            (s, d) => {
                let mut p = Vec::with_capacity(40 + tcp.len());
                p.extend_from_slice(&[0x60, 0, 0, 0]);
                p.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
                p.extend_from_slice(&[6, 64]);
                p.extend_from_slice(&v6_octets(s));
                p.extend_from_slice(&v6_octets(d));
                p.extend_from_slice(&tcp);
                p
            }
        }
    }

    /// [`TcpSegment::to_ip`] in an Ethernet II frame.
    pub fn to_ethernet(&self) -> Vec<u8> {
        let ethertype = match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => 0x0800,
            _ => 0x86DD,
        };
        ethernet(ethertype, &self.to_ip())
    }
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// An Ethernet II frame (fixed locally administered MACs) around `payload`.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A 20-byte IPv4 header with a valid checksum. `frag` is the 16-bit flags
/// and fragment-offset field (offset in 8-byte units, `0x2000` = MF).
pub fn ipv4_header(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    payload_len: usize,
    id: u16,
    frag: u16,
) -> [u8; 20] {
    let total = (20 + payload_len).min(65_535) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let sum = checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_verifies_to_zero() {
        let h = ipv4_header([10, 0, 0, 1], [10, 0, 0, 2], 6, 100, 1, 0);
        assert_eq!(checksum(&[&h]), 0);
        let seg = TcpSegment::new("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap())
            .payload(b"abc");
        let ip = seg.to_ip();
        let tcp = etherparse::TcpSlice::from_slice(&ip[20..]).unwrap();
        let expect = tcp
            .calc_checksum_ipv4([10, 0, 0, 1], [10, 0, 0, 2])
            .unwrap();
        assert_eq!(tcp.checksum(), expect);
    }
}
