//! Reads packet captures and decodes them down to TCP segments, in pure Rust.
//!
//! - [`CaptureReader`] streams packets out of classic pcap (either byte
//!   order, micro- or nanosecond), pcapng (several sections and interfaces,
//!   per-interface link type and timestamp resolution) and gzip-compressed
//!   captures, from a file, stdin or any reader, with bounded memory. It is
//!   a [`ChunkReader`] (the input in [`Chunk`]s of whole blocks) and a
//!   [`BlockParser`] (packets out of a chunk's blocks) on one thread;
//!   [`CaptureReader::into_parts`] hands them out so that one read of a
//!   capture serves several parsing threads.
//! - [`PacketDecoder`] turns each packet into a [`TcpPacket`]: Ethernet (with
//!   VLAN/QinQ stacks), Linux cooked (SLL, SLL2), raw IP, BSD loopback; IPv4
//!   with fragment reassembly ([`defrag`]); IPv6 with extension headers and
//!   fragments. Everything else is counted in [`DecodeStats`] and skipped.
//! - [`writer`] builds synthetic captures for tests and benchmarks.
//!
//! ```no_run
//! use shadowmcp_capture::{CaptureReader, PacketDecoder};
//! let mut reader = CaptureReader::open("trace.pcap.gz")?;
//! let mut decoder = PacketDecoder::default();
//! loop {
//!     match reader.next_packet() {
//!         Ok(Some(packet)) => {
//!             if let Some(tcp) = decoder.decode(&packet) {
//!                 println!("{} -> {} {} bytes", tcp.src, tcp.dst, tcp.payload.len());
//!             }
//!         }
//!         Ok(None) => break,
//!         Err(e) if !e.is_fatal() => { eprintln!("warning: {e}"); break }
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! decoder.finish();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod decode;
pub mod defrag;
mod error;
mod reader;
pub mod writer;

pub use decode::{DecodeStats, DecoderConfig, MalformedKind, PacketDecoder, TcpFlags, TcpPacket};
pub use error::CaptureError;
pub use reader::{
    BlockParser, CaptureFormat, CaptureParts, CaptureReader, Chunk, ChunkReader, DecryptionSecrets,
    Packet, PacketAt, ReaderConfig, ReaderStats,
};

/// A link-layer header type (tcpdump.org `LINKTYPE_*` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in the capturing host's order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// `DLT_RAW` as most systems number it in files (raw IPv4/IPv6).
    pub const RAW_12: LinkType = LinkType(12);
    /// `DLT_RAW` on OpenBSD.
    pub const RAW_14: LinkType = LinkType(14);
    /// Raw IPv4 or IPv6 (`LINKTYPE_RAW`).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The `LINKTYPE_` name without prefix, for link types this crate decodes.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            LinkType::NULL => "NULL",
            LinkType::ETHERNET => "ETHERNET",
            LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => "RAW",
            LinkType::LOOP => "LOOP",
            LinkType::LINUX_SLL => "LINUX_SLL",
            LinkType::IPV4 => "IPV4",
            LinkType::IPV6 => "IPV6",
            LinkType::LINUX_SLL2 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "linktype {}", self.0),
        }
    }
}
