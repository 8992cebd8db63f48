#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use shadowmcp_exchange::{Exchange, Flow, Origin, Record, SseEvent, Timestamp, Transport};
use shadowmcp_http2::testutil::{flag, frame, kind, HpackEncoder, PREFACE};
use shadowmcp_http2::{Connection, Direction, ExchangeIds, Http2Config};

pub const C: Direction = Direction::ToServer;
pub const S: Direction = Direction::ToClient;

pub fn flow() -> Flow {
    Flow {
        id: 7,
        client: "10.0.0.1:50000".parse().unwrap(),
        server: "10.0.0.2:443".parse().unwrap(),
        transport: Transport::Tcp,
    }
}

pub fn ts() -> Timestamp {
    Timestamp::from_nanos(1_000)
}

pub fn conn_with(config: Http2Config, midstream: bool) -> Connection {
    Connection::new(
        flow(),
        Origin::default(),
        midstream,
        Arc::new(config),
        ExchangeIds::new(),
    )
}

pub fn conn() -> Connection {
    conn_with(Http2Config::default(), false)
}

/// The client's opening: preface and an empty SETTINGS.
pub fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(frame(kind::SETTINGS, 0, 0, &[]));
    v
}

pub fn server_start() -> Vec<u8> {
    frame(kind::SETTINGS, 0, 0, &[])
}

/// HEADERS with END_HEADERS (and END_STREAM when `end`).
pub fn headers(enc: &mut HpackEncoder, stream: u32, fields: &[(&str, &str)], end: bool) -> Vec<u8> {
    let block = enc.encode(fields);
    let flags = flag::END_HEADERS | if end { flag::END_STREAM } else { 0 };
    frame(kind::HEADERS, flags, stream, &block)
}

pub fn data(stream: u32, body: &[u8], end: bool) -> Vec<u8> {
    frame(
        kind::DATA,
        if end { flag::END_STREAM } else { 0 },
        stream,
        body,
    )
}

pub fn get(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".into()),
        (":scheme", "https".into()),
        (":authority", "mcp.example.com".into()),
        (":path", path.into()),
    ]
}

/// Feeds each (direction, bytes) in order, one call each.
pub fn run(conn: &mut Connection, steps: &[(Direction, Vec<u8>)]) -> Vec<Record> {
    let mut out = Vec::new();
    for (dir, bytes) in steps {
        conn.on_data(*dir, ts(), bytes, &mut out);
    }
    out
}

pub fn exchanges(records: &[Record]) -> Vec<&Exchange> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Exchange(e) => Some(e.as_ref()),
            Record::SseUpdate(_) => None,
        })
        .collect()
}

/// Records folded per exchange id: the exchange with every later SSE
/// event appended to its `sse_events`, update flags merged, and whether an
/// end update came. Independent of how events were batched.
#[derive(Debug, PartialEq, Eq)]
pub struct Folded {
    pub exchange: Exchange,
    pub ended: bool,
    pub updates_after_end: usize,
}

pub fn fold(records: &[Record]) -> BTreeMap<u64, Folded> {
    let mut map: BTreeMap<u64, Folded> = BTreeMap::new();
    for r in records {
        match r {
            Record::Exchange(e) => {
                let prev = map.insert(
                    e.id,
                    Folded {
                        exchange: (**e).clone(),
                        ended: false,
                        updates_after_end: 0,
                    },
                );
                assert!(prev.is_none(), "exchange id {} emitted twice", e.id);
            }
            Record::SseUpdate(u) => {
                let f = map
                    .get_mut(&u.exchange_id)
                    .expect("update before its exchange");
                if f.ended {
                    f.updates_after_end += 1;
                }
                f.exchange.flags.merge(u.flags);
                if let Some(r) = f.exchange.response.as_mut() {
                    r.sse_events.extend(u.events.iter().cloned());
                }
                f.ended |= u.end;
            }
        }
    }
    map
}

pub fn event_data(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn fields<'a>(v: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(n, v)| (*n, v.as_str())).collect()
}
