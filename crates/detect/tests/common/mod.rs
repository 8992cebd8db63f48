#![allow(dead_code)]

use std::sync::OnceLock;

use shadowmcp_detect::{DetectConfig, Detection, Detector};
use shadowmcp_exchange::{Body, Exchange, Headers, HttpVersion, Request, Response, SseEvent};
use shadowmcp_rules::RulePack;

pub fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::new(&RulePack::default_pack(), DetectConfig::default()).unwrap())
}

pub fn headers(list: &[(&str, &str)]) -> Headers {
    let mut h = Headers::default();
    for (n, v) in list {
        h.push(*n, v.as_bytes().to_vec());
    }
    h
}

pub fn body(data: &[u8]) -> Body {
    Body {
        data: data.to_vec(),
        wire_len: data.len() as u64,
        decoded_len: data.len() as u64,
        ..Body::default()
    }
}

/// A request to `host`; `Host` is added first.
pub fn req(method: &str, host: &str, target: &str, hdrs: &[(&str, &str)], data: &[u8]) -> Request {
    let mut h = headers(&[("Host", host)]);
    h.0.extend(headers(hdrs).0);
    Request {
        method: method.into(),
        target: target.into(),
        version: HttpVersion::Http11,
        headers: h,
        body: body(data),
        trailers: Headers::default(),
    }
}

pub fn resp(status: u16, hdrs: &[(&str, &str)], data: &[u8]) -> Response {
    Response {
        version: HttpVersion::Http11,
        status,
        reason: String::new(),
        headers: headers(hdrs),
        body: body(data),
        trailers: Headers::default(),
        sse_events: Vec::new(),
    }
}

pub fn event(kind: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: kind.map(str::to_string),
        data: data.into(),
        id: None,
        retry: None,
    }
}

pub fn sse_resp(events: Vec<SseEvent>) -> Response {
    let mut r = resp(200, &[("Content-Type", "text/event-stream")], b"");
    r.sse_events = events;
    r
}

pub fn exchange(request: Option<Request>, response: Option<Response>) -> Exchange {
    let mut ex = Exchange::new(1);
    ex.request = request;
    ex.response = response;
    ex
}

pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A JSON POST to `host` + `target`, no response.
pub fn post(host: &str, target: &str, data: &str) -> Exchange {
    exchange(
        Some(req("POST", host, target, &[JSON], data.as_bytes())),
        None,
    )
}

pub fn inspect(ex: &Exchange) -> Detection {
    detector().inspect(ex)
}

pub fn ids(d: &Detection) -> Vec<u32> {
    let mut v: Vec<u32> = d.matches.iter().map(|m| m.id).collect();
    v.sort_unstable();
    v
}

pub fn has(d: &Detection, id: u32) -> bool {
    d.matches.iter().any(|m| m.id == id)
}
