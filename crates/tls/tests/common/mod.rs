//! Fixture loading shared by the integration tests: the two TCP byte
//! streams of the one connection in a capture made by `data/gen.sh`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use shadowmcp_capture::{CaptureReader, PacketDecoder};
use shadowmcp_tls::{Direction, KeyLog, TlsConfig, TlsConnection, TlsEvent};

pub fn data_path(name: &str) -> String {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.push("tests/data");
    p.push(name);
    p.to_string_lossy().into_owned()
}

/// Client→server and server→client payload bytes, in sequence order
/// (retransmitted bytes dropped). The client is the sender of the SYN.
pub struct Streams {
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
}

pub fn streams(case: &str) -> Streams {
    let mut reader = CaptureReader::open(&data_path(&format!("{case}.pcap"))).unwrap();
    let mut decoder = PacketDecoder::default();
    let mut client = None;
    let mut next_seq: [Option<u32>; 2] = [None, None];
    let mut out = [Vec::new(), Vec::new()];
    while let Some(packet) = reader.next_packet().unwrap() {
        let Some(tcp) = decoder.decode(&packet) else {
            continue;
        };
        if tcp.flags.syn && !tcp.flags.ack {
            client = Some(tcp.src);
        }
        let d = usize::from(Some(tcp.src) != client);
        if tcp.flags.syn {
            next_seq[d] = Some(tcp.seq.wrapping_add(1));
            continue;
        }
        let payload = &tcp.payload[..];
        if payload.is_empty() {
            continue;
        }
        let expected = next_seq[d].expect("SYN seen");
        // Keep only bytes past what we have (drops retransmissions).
        let skip = expected.wrapping_sub(tcp.seq) as usize;
        if skip < payload.len() {
            out[d].extend_from_slice(&payload[skip..]);
            next_seq[d] = Some(tcp.seq.wrapping_add(payload.len() as u32));
        }
    }
    let [to_server, to_client] = out;
    Streams {
        to_server,
        to_client,
    }
}

pub fn keylog_text(case: &str) -> String {
    std::fs::read_to_string(data_path(&format!("{case}.keys"))).unwrap()
}

pub fn keylog(case: &str) -> Arc<KeyLog> {
    let (log, errors) = KeyLog::parse(&keylog_text(case));
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(log)
}

pub fn config(keys: Option<Arc<KeyLog>>) -> TlsConfig {
    TlsConfig {
        keylog: keys,
        ..TlsConfig::default()
    }
}

/// Plaintext per direction and the stop notices, from a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    pub stopped: Vec<(Direction, shadowmcp_tls::IssueKind)>,
}

pub fn collect(events: &[TlsEvent]) -> Output {
    let mut o = Output::default();
    for e in events {
        match e {
            TlsEvent::Plaintext {
                dir: Direction::ToServer,
                data,
            } => o.to_server.extend_from_slice(data),
            TlsEvent::Plaintext {
                dir: Direction::ToClient,
                data,
            } => o.to_client.extend_from_slice(data),
            TlsEvent::Stopped { dir, reason } => o.stopped.push((*dir, *reason)),
            TlsEvent::Gap { .. } => {}
        }
    }
    o
}

/// Feeds the streams the way a capture may deliver them: the client's
/// first record (its hello, which the server answers), then alternating
/// chunks of `chunk` bytes, client first.
pub fn run(conn: &mut TlsConnection, s: &Streams, chunk: usize) -> Output {
    let mut events = Vec::new();
    let hello =
        (5 + u16::from_be_bytes([s.to_server[3], s.to_server[4]]) as usize).min(s.to_server.len());
    for c in s.to_server[..hello].chunks(chunk.min(hello)) {
        conn.on_data(Direction::ToServer, c, &mut events);
    }
    let (mut a, mut b) = (&s.to_server[hello..], &s.to_client[..]);
    while !a.is_empty() || !b.is_empty() {
        let n = chunk.min(a.len());
        conn.on_data(Direction::ToServer, &a[..n], &mut events);
        a = &a[n..];
        let n = chunk.min(b.len());
        conn.on_data(Direction::ToClient, &b[..n], &mut events);
        b = &b[n..];
    }
    conn.finish(&mut events);
    collect(&events)
}

/// Feeds the streams in TLS flight order, as the peers sent them: client
/// hello, the whole server side up to the point the client answers, then the
/// rest. Implemented by splitting each stream at record boundaries and
/// interleaving one record at a time, server records first once the client
/// hello is in, which is a valid capture order for these one-request
/// connections.
pub fn run_records(conn: &mut TlsConnection, s: &Streams) -> Output {
    let mut events = Vec::new();
    let split = |mut b: &[u8]| {
        let mut v = Vec::new();
        while b.len() >= 5 {
            let n = 5 + u16::from_be_bytes([b[3], b[4]]) as usize;
            let n = n.min(b.len());
            v.push(b[..n].to_vec());
            b = &b[n..];
        }
        v
    };
    let client = split(&s.to_server);
    let server = split(&s.to_client);
    let mut ci = client.iter();
    if let Some(first) = ci.next() {
        conn.on_data(Direction::ToServer, first, &mut events);
    }
    let mut si = server.iter();
    loop {
        let a = si.next();
        let b = ci.next();
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(r) = a {
            conn.on_data(Direction::ToClient, r, &mut events);
        }
        if let Some(r) = b {
            conn.on_data(Direction::ToServer, r, &mut events);
        }
    }
    conn.finish(&mut events);
    collect(&events)
}
