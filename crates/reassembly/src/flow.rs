//! Connection keys, mid-stream orientation and stable flow ids.

use std::net::{IpAddr, SocketAddr};

use shadowmcp_exchange::Timestamp;

/// Ports taken as "server" when a connection is picked up mid-stream:
/// HTTP, HTTPS, proxies (3128) and the usual development / MCP server ports
/// (3000, 5000, 8000 for Python MCP servers, 6274/6277 for the MCP
/// inspector, ...).
pub(crate) const SERVER_PORTS: [u16; 15] = [
    80, 443, 3000, 3001, 3128, 5000, 6274, 6277, 8000, 8008, 8080, 8081, 8443, 8888, 9000,
];

/// 52 bits: every id is exactly representable as a JSON (IEEE double) number.
pub(crate) const FLOW_ID_MASK: u64 = (1 << 52) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn of(addr: SocketAddr) -> Endpoint {
        Endpoint {
            ip: addr.ip(),
            port: addr.port(),
        }
    }

    pub fn addr(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// Direction-independent key of a TCP tuple: `a <= b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TupleKey {
    pub a: Endpoint,
    pub b: Endpoint,
}

impl TupleKey {
    /// The key and whether `src` is its `a` side.
    pub fn new(src: SocketAddr, dst: SocketAddr) -> (TupleKey, bool) {
        let (s, d) = (Endpoint::of(src), Endpoint::of(dst));
        if s <= d {
            (TupleKey { a: s, b: d }, true)
        } else {
            (TupleKey { a: d, b: s }, false)
        }
    }
}

fn server_rank(port: u16) -> u8 {
    if SERVER_PORTS.contains(&port) {
        2
    } else if port != 0 && port < 1024 {
        1
    } else {
        0
    }
}

/// Orientation of a connection whose handshake was not seen, from the first
/// segment's ports: a port in [`SERVER_PORTS`] beats any other, then a port
/// below 1024 beats a higher one, then the lower port wins; equal ports
/// leave the first segment's destination as the server.
pub(crate) fn midstream_server_is_dst(src_port: u16, dst_port: u16) -> bool {
    let (rs, rd) = (server_rank(src_port), server_rank(dst_port));
    if rs != rd {
        return rd > rs;
    }
    if src_port != dst_port {
        return dst_port < src_port;
    }
    true
}

/// Stable id of a connection: a hash of its oriented tuple and the capture
/// time of its first segment, masked to 52 bits. FNV-1a with a SplitMix64
/// finaliser, written out here so ids do not change with the Rust version
/// (std's hasher makes no such promise).
pub(crate) fn flow_id(client: SocketAddr, server: SocketAddr, first_ts: Timestamp) -> u64 {
    let mut h = Fnv1a::new();
    h.write(&[6]); // IP protocol number of TCP
    for addr in [client, server] {
        match addr.ip() {
            IpAddr::V4(ip) => {
                h.write(&[4]);
                h.write(&ip.octets());
            }
            IpAddr::V6(ip) => {
                h.write(&[6]);
                h.write(&ip.octets());
            }
        }
        h.write(&addr.port().to_be_bytes());
    }
    h.write(&first_ts.as_nanos().to_le_bytes());
    splitmix64(h.0) & FLOW_ID_MASK
}

struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn orientation_rule() {
        // Known server port wins whichever way the first segment goes.
        assert!(midstream_server_is_dst(51000, 80));
        assert!(!midstream_server_is_dst(8080, 51000));
        // A listed port beats a generic low port.
        assert!(midstream_server_is_dst(22, 3000));
        // Below 1024 beats above.
        assert!(midstream_server_is_dst(40000, 993));
        assert!(!midstream_server_is_dst(993, 40000));
        // Otherwise the lower port.
        assert!(midstream_server_is_dst(50000, 12345));
        assert!(!midstream_server_is_dst(12345, 50000));
        // Two listed ports: lower wins.
        assert!(!midstream_server_is_dst(3000, 8080));
        // Equal ports: destination of the first segment.
        assert!(midstream_server_is_dst(7000, 7000));
        // Port 0 is not a server port.
        assert!(!midstream_server_is_dst(1000, 0));
    }

    #[test]
    fn tuple_key_is_direction_independent() {
        let (k1, s1) = TupleKey::new(sa("10.0.0.1:5000"), sa("10.0.0.2:80"));
        let (k2, s2) = TupleKey::new(sa("10.0.0.2:80"), sa("10.0.0.1:5000"));
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
    }

    #[test]
    fn flow_id_is_stable_52_bit_and_input_sensitive() {
        let c = sa("192.0.2.1:40000");
        let s = sa("[2001:db8::1]:443");
        let t = Timestamp::from_nanos(1_700_000_000_000_000_000);
        let id = flow_id(c, s, t);
        assert_eq!(id, flow_id(c, s, t));
        assert_eq!(id & !FLOW_ID_MASK, 0);
        assert_ne!(id, flow_id(s, c, t));
        assert_ne!(id, flow_id(c, s, Timestamp::from_nanos(t.as_nanos() + 1)));
        assert_ne!(id, flow_id(sa("192.0.2.1:40001"), s, t));
        // Pinned value: ids must not change between builds or Rust versions.
        assert_eq!(
            flow_id(
                sa("10.0.0.1:40000"),
                sa("10.0.0.2:80"),
                Timestamp::from_nanos(0)
            ),
            PINNED_ID
        );
    }

    // Computed independently (FNV-1a + SplitMix64 over the documented byte layout).
    const PINNED_ID: u64 = 3_060_842_106_055_637;
}
