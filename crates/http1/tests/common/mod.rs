#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use shadowmcp_exchange::{
    Exchange, Flow, Origin, Record, SseEvent, SseUpdate, Timestamp, Transport,
};
use shadowmcp_http1::{Connection, Direction, ExchangeIds, Http1Config};

pub fn flow() -> Flow {
    Flow {
        id: 7,
        client: "10.0.0.1:50000".parse().unwrap(),
        server: "10.0.0.2:80".parse().unwrap(),
        transport: Transport::Tcp,
    }
}

pub fn conn_with(midstream: bool, config: Http1Config) -> Connection {
    Connection::new(
        flow(),
        Origin {
            input: "test.pcap".into(),
            position: 0,
        },
        midstream,
        Arc::new(config),
        ExchangeIds::new(),
    )
}

pub fn conn() -> Connection {
    conn_with(false, Http1Config::default())
}

pub fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanos(n)
}

/// Feeds all requests, then all responses, each in `step`-byte pieces,
/// then closes.
pub fn run(c: &mut Connection, reqs: &[u8], resps: &[u8], step: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for piece in reqs.chunks(step.max(1)) {
        c.on_data(Direction::ToServer, ts(1), piece, &mut out);
    }
    for piece in resps.chunks(step.max(1)) {
        c.on_data(Direction::ToClient, ts(2), piece, &mut out);
    }
    c.on_close(ts(3), &mut out);
    out
}

pub fn exchanges(records: &[Record]) -> Vec<&Exchange> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Exchange(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

pub fn updates(records: &[Record]) -> Vec<&SseUpdate> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::SseUpdate(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// Exchanges with every SSE event folded into `response.sse_events` and the
/// SSE updates' flags merged, so outputs of different splits compare equal.
pub fn normalize(records: &[Record]) -> Vec<Exchange> {
    let mut order = Vec::new();
    let mut by_id: BTreeMap<u64, Exchange> = BTreeMap::new();
    let mut ended: BTreeMap<u64, usize> = BTreeMap::new();
    for r in records {
        match r {
            Record::Exchange(e) => {
                assert!(
                    !by_id.contains_key(&e.id),
                    "exchange id {} emitted twice",
                    e.id
                );
                order.push(e.id);
                by_id.insert(e.id, (**e).clone());
            }
            Record::SseUpdate(u) => {
                let e = by_id
                    .get_mut(&u.exchange_id)
                    .expect("update before its exchange");
                assert!(!ended.contains_key(&u.exchange_id), "update after end");
                e.flags.merge(u.flags);
                e.response
                    .as_mut()
                    .unwrap()
                    .sse_events
                    .extend(u.events.iter().cloned());
                if u.end {
                    ended.insert(u.exchange_id, 1);
                }
            }
        }
    }
    for (id, e) in &by_id {
        if e.flags.streaming {
            assert!(ended.contains_key(id), "stream {id} never ended");
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

pub fn ev(data: &str) -> SseEvent {
    SseEvent {
        data: data.into(),
        ..SseEvent::default()
    }
}

/// A chunked body of `pieces`, with an empty trailer section.
pub fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in pieces {
        v.extend(format!("{:x}\r\n", p.len()).into_bytes());
        v.extend_from_slice(p);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n\r\n");
    v
}

pub fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut v = head.replace('\n', "\r\n").into_bytes();
    v.extend_from_slice(body);
    v
}

/// A pipelined mix as (requests, responses), one element per exchange.
pub fn pipelined_parts() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let gz = gzip(&b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}".repeat(20));
    let reqs = [
        "GET /chunked HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET /gz HTTP/1.1\r\nHost: a.example\r\nAccept-Encoding: gzip\r\n\r\n",
        "HEAD /head HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "DELETE /nc HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET /nm HTTP/1.1\r\nHost: a.example\r\nIf-None-Match: \"x\"\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /sse HTTP/1.1\r\nHost: a.example\r\nAccept: text/event-stream\r\n\r\n",
        "GET /last HTTP/1.0\r\nHost: a.example\r\n\r\n",
    ]
    .iter()
    .map(|r| r.as_bytes().to_vec())
    .collect();
    let mut resps: Vec<Vec<u8>> = Vec::new();
    resps.push(response(
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n",
    ));
    resps.push(response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {}\n\n",
            gz.len()
        ),
        &gz,
    ));
    resps.push(response("HTTP/1.1 200 OK\nContent-Length: 1000\n\n", b""));
    resps.push(response("HTTP/1.1 204 No Content\n\n", b""));
    resps.push(response(
        "HTTP/1.1 304 Not Modified\nContent-Length: 50\n\n",
        b"",
    ));
    let mut cont = response("HTTP/1.1 100 Continue\n\n", b"");
    cont.extend(response("HTTP/1.1 200 OK\nContent-Length: 2\n\n", b"ok"));
    resps.push(cont);
    resps.push(response(
        "HTTP/1.1 200 OK\nContent-Type: text/event-stream; charset=utf-8\nTransfer-Encoding: chunked\n\n",
        &chunked(&[b"data: one\n\ndata: ", b"two\r\n\r\n"]),
    ));
    resps.push(response("HTTP/1.0 200 OK\n\n", b"until the end"));
    (reqs, resps)
}

/// The pipelined mix as two byte streams.
pub fn pipelined_mix() -> (Vec<u8>, Vec<u8>) {
    let (q, r) = pipelined_parts();
    (q.concat(), r.concat())
}
