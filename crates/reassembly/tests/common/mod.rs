//! Test harness: one client/server pair, segments built tersely, events
//! collected.

#![allow(dead_code)]

use std::net::SocketAddr;

use shadowmcp_exchange::Timestamp;
use shadowmcp_reassembly::{
    CloseReason, ConnId, Direction, OwnedStreamEvent, Reassembler, ReassemblyConfig, Segment,
    TcpFlags,
};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const SEC: i64 = 1_000_000_000;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub struct Harness {
    pub r: Reassembler,
    pub events: Vec<OwnedStreamEvent>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Capture time of the next segment (ns); each segment adds 1 ms.
    pub now: i64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(ReassemblyConfig::default())
    }

    pub fn with(config: ReassemblyConfig) -> Harness {
        Harness {
            r: Reassembler::new(config),
            events: Vec::new(),
            client: addr("10.0.0.1:40000"),
            server: addr("10.0.0.2:80"),
            now: 1_700_000_000 * SEC,
        }
    }

    pub fn send(
        &mut self,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
        missing: u32,
    ) {
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let seg = Segment {
            ts: Timestamp::from_nanos(self.now),
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags::from_bits(flags),
            payload,
            missing,
        };
        self.now += 1_000_000;
        self.r.process(&seg, &mut self.events);
    }

    /// Client → server.
    pub fn c(&mut self, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        self.send(true, seq, ack, flags, payload, 0);
    }

    /// Server → client.
    pub fn s(&mut self, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        self.send(false, seq, ack, flags, payload, 0);
    }

    /// SYN (client ISN `ci`), SYN+ACK (server ISN `si`), ACK.
    pub fn handshake(&mut self, ci: u32, si: u32) {
        self.c(ci, 0, SYN, b"");
        self.s(si, ci.wrapping_add(1), SYN | ACK, b"");
        self.c(ci.wrapping_add(1), si.wrapping_add(1), ACK, b"");
    }

    pub fn finish(&mut self) {
        self.r.finish(&mut self.events);
    }

    pub fn ids(&self) -> Vec<ConnId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                OwnedStreamEvent::Opened { conn, .. } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    /// Concatenated data of one connection and direction.
    pub fn stream(&self, conn: ConnId, dir: Direction) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.events {
            if let OwnedStreamEvent::Data {
                conn: c,
                dir: d,
                data,
                ..
            } = e
            {
                if *c == conn && *d == dir {
                    v.extend_from_slice(data);
                }
            }
        }
        v
    }

    /// Data and gaps of one direction, gaps written as `<gap N>`.
    pub fn render(&self, conn: ConnId, dir: Direction) -> String {
        let mut s = String::new();
        for e in &self.events {
            match e {
                OwnedStreamEvent::Data {
                    conn: c,
                    dir: d,
                    data,
                    ..
                } if *c == conn && *d == dir => {
                    s.push_str(&String::from_utf8_lossy(data));
                }
                OwnedStreamEvent::Gap {
                    conn: c,
                    dir: d,
                    len,
                } if *c == conn && *d == dir => {
                    s.push_str(&format!("<gap {len}>"));
                }
                OwnedStreamEvent::Fin { conn: c, dir: d } if *c == conn && *d == dir => {
                    s.push_str("<fin>");
                }
                _ => {}
            }
        }
        s
    }

    pub fn closed(&self, conn: ConnId) -> Option<CloseReason> {
        self.events.iter().find_map(|e| match e {
            OwnedStreamEvent::Closed {
                conn: c, reason, ..
            } if *c == conn => Some(*reason),
            _ => None,
        })
    }

    /// The only connection opened so far.
    pub fn only(&self) -> ConnId {
        let ids = self.ids();
        assert_eq!(ids.len(), 1, "expected one connection, got {ids:?}");
        ids[0]
    }
}

/// Checks the per-connection event grammar: one `Opened` first, at most
/// one `Closed` last, no data after a direction's `Fin`.
pub fn check_grammar(events: &[OwnedStreamEvent]) {
    use std::collections::HashMap;
    #[derive(Default)]
    struct St {
        opened: bool,
        closed: bool,
        fin: [bool; 2],
    }
    let mut st: HashMap<ConnId, St> = HashMap::new();
    for e in events {
        match e {
            OwnedStreamEvent::Opened { conn, flow, .. } => {
                assert_eq!(flow.id, *conn);
                let s = st.entry(*conn).or_default();
                assert!(!s.opened || s.closed, "conn {conn} opened twice while open");
                *s = St {
                    opened: true,
                    ..St::default()
                };
            }
            OwnedStreamEvent::Data {
                conn, dir, data, ..
            } => {
                let s = st.get(conn).expect("data before opened");
                assert!(s.opened && !s.closed, "data outside open conn");
                assert!(!data.is_empty(), "empty data event");
                assert!(!s.fin[idx(*dir)], "data after fin");
            }
            OwnedStreamEvent::Gap { conn, dir, len } => {
                let s = st.get(conn).expect("gap before opened");
                assert!(s.opened && !s.closed);
                assert!(*len > 0, "empty gap");
                assert!(!s.fin[idx(*dir)], "gap after fin");
            }
            OwnedStreamEvent::Fin { conn, dir } => {
                let s = st.get_mut(conn).expect("fin before opened");
                assert!(s.opened && !s.closed);
                assert!(!s.fin[idx(*dir)], "fin twice");
                s.fin[idx(*dir)] = true;
            }
            OwnedStreamEvent::Closed { conn, .. } => {
                let s = st.get_mut(conn).expect("closed before opened");
                assert!(s.opened && !s.closed, "closed twice");
                s.closed = true;
            }
        }
    }
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}
