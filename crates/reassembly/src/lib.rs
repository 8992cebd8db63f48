//! TCP stream reassembly: captured segments in, ordered byte streams out.
//!
//! One job: turn the TCP segments a passive tap saw into, per connection and
//! direction, the in-order bytes each side sent, with every byte delivered
//! exactly once and every missing stretch reported as a [`StreamEvent::Gap`],
//! ready for an HTTP parser.
//!
//! Feed segments with [`Reassembler::process`]; events go to a
//! [`StreamSink`] (any `FnMut(StreamEvent<'_>)`). Per connection the events
//! are `Opened`, then `Data` / `Gap` / `Fin` per direction, then `Closed`,
//! after which nothing more is said about that connection id.
//!
//! Policies (see the crate README for the reasoning):
//! - **Orientation.** The SYN sender is the client and the SYN+ACK sender the
//!   server. Without a handshake (`midstream`), the server is the side whose
//!   port is a known HTTP/MCP/proxy port (80, 443, 3000, 3001, 3128, 5000,
//!   6274, 6277, 8000, 8008, 8080, 8081, 8443, 8888, 9000), else the side
//!   with a port below 1024, else the lower port, else the first segment's
//!   destination.
//! - **Overlaps: first data wins.** Bytes received first for a sequence range
//!   are kept; later copies are discarded. A later copy that differs from
//!   still-buffered bytes counts as an `overlap_conflict` (possible evasion).
//!   Delivered bytes are not kept, so copies of them cannot be compared.
//! - **Gaps.** A hole is skipped (reported as a gap) when the direction's
//!   out-of-order buffer exceeds its cap, when the receiver acknowledged past
//!   it (capture loss), or when the connection closes (RST, both FINs,
//!   timeout, eviction, end of input). Snaplen-cut bytes are gaps.
//! - **ACKs** are used for one thing only: detecting that the receiver has
//!   the bytes of a hole, so the capture lost them ([`ReassemblyConfig::skip_acked_holes`]).
//! - **Memory** is bounded per direction, globally and in connection count;
//!   in-order data is passed through borrowed, never copied or kept.
//!
//! ```
//! use shadowmcp_exchange::Timestamp;
//! use shadowmcp_reassembly::{
//!     Direction, Reassembler, Segment, StreamEvent, TcpFlags,
//! };
//!
//! let client = "10.0.0.1:40000".parse().unwrap();
//! let server = "10.0.0.2:80".parse().unwrap();
//! let seg = |src, dst, seq, ack, flags: u8, payload: &'static [u8]| Segment {
//!     ts: Timestamp::from_nanos(1_000),
//!     src,
//!     dst,
//!     seq,
//!     ack,
//!     flags: TcpFlags::from_bits(flags),
//!     payload,
//!     missing: 0,
//! };
//! let mut r = Reassembler::default();
//! let mut request = Vec::new();
//! let mut sink = |ev: StreamEvent<'_>| {
//!     if let StreamEvent::Data { dir: Direction::ToServer, data, .. } = ev {
//!         request.extend_from_slice(data);
//!     }
//! };
//! r.process(&seg(client, server, 100, 0, 0x02, b""), &mut sink); // SYN
//! r.process(&seg(server, client, 900, 101, 0x12, b""), &mut sink); // SYN+ACK
//! // The second half of the request arrives first; it is buffered.
//! r.process(&seg(client, server, 106, 901, 0x18, b"/ HTTP/1.1\r\n"), &mut sink);
//! r.process(&seg(client, server, 101, 901, 0x18, b"GET /"), &mut sink);
//! r.finish(&mut sink);
//! assert_eq!(request, b"GET // HTTP/1.1\r\n");
//! assert_eq!(r.stats().out_of_order, 1);
//! ```

mod flow;
mod half;
mod reassembler;
mod types;

pub use half::PIECE_OVERHEAD;
pub use reassembler::Reassembler;
pub use types::{
    CloseReason, ConnId, Direction, OwnedStreamEvent, ReassemblyConfig, ReassemblyStats, Segment,
    StreamEvent, StreamSink, TcpFlags,
};
