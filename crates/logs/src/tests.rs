//! End-to-end tests of `process_log` per format, on small samples written
//! from each format's documentation.

use std::io::{BufReader, Read, Write};
use std::sync::mpsc;

use base64::Engine;
use serde_json::json;
use shadowmcp_exchange::{
    Body, Exchange, Flags, Flow, Headers, HttpVersion, Origin, Record, Request, Response, SseEvent,
    Timestamp, Transport,
};
use shadowmcp_http1::ExchangeIds;

use crate::{process_log, LogConfig, LogError, LogFormat, LogReport};

/// 2026-11-29T07:25:34Z
const T0: i64 = 1_795_937_134;

fn ts(secs: i64, millis: u32) -> Option<Timestamp> {
    Some(Timestamp::from_secs_nanos(secs, millis * 1_000_000))
}

fn run_with(
    name: &str,
    data: &[u8],
    format: Option<LogFormat>,
    config: &LogConfig,
) -> Result<(LogReport, Vec<Exchange>, Vec<String>), LogError> {
    let mut exchanges = Vec::new();
    let mut warnings = Vec::new();
    let report = process_log(
        name,
        data,
        format,
        config,
        &ExchangeIds::new(),
        &mut |r| match r {
            Record::Exchange(ex) => exchanges.push(*ex),
            Record::SseUpdate(_) => panic!("logs never emit SSE updates"),
        },
        &mut |w| warnings.push(w),
    )?;
    Ok((report, exchanges, warnings))
}

fn run(name: &str, data: &[u8]) -> (LogReport, Vec<Exchange>, Vec<String>) {
    run_with(name, data, None, &LogConfig::default()).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    let mut h = Headers::default();
    for (n, v) in pairs {
        h.push(*n, *v);
    }
    h
}

fn req(method: &str, target: &str, version: HttpVersion, h: Headers, body: Body) -> Request {
    Request {
        method: method.into(),
        target: target.into(),
        version,
        headers: h,
        body,
        trailers: Headers::default(),
    }
}

fn resp(status: u16, reason: &str, version: HttpVersion, h: Headers, body: Body) -> Response {
    Response {
        version,
        status,
        reason: reason.into(),
        headers: h,
        body,
        trailers: Headers::default(),
        sse_events: Vec::new(),
    }
}

fn origin(input: &str, position: u64) -> Origin {
    Origin {
        input: input.into(),
        position,
    }
}

fn text_body(s: &[u8]) -> Body {
    Body {
        data: s.to_vec(),
        wire_len: s.len() as u64,
        decoded_len: s.len() as u64,
        ..Body::default()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

// ---------------------------------------------------------------- Squid

const SQUID_NATIVE: &str = "\
1795937134.147    120 10.1.2.3 TCP_MISS/200 1530 POST https://mcp.example.com/mcp alice HIER_DIRECT/203.0.113.9 text/event-stream
1795937135.001      5 10.1.2.4 TCP_TUNNEL/200 4500 CONNECT mcp.example.com:443 - HIER_DIRECT/203.0.113.9 -
1795937136.500      0 10.1.2.5 TCP_MISS_ABORTED/000 0 GET http://tools.example.org/sse bob%20smith HIER_NONE/- -
1795937137.000      0 10.1.2.6 NONE_NONE/400 3900 NONE error:invalid-request - HIER_NONE/- text/html
";

#[test]
fn squid_native_lines_become_exchanges() {
    let (report, got, warnings) = run("access.log", SQUID_NATIVE.as_bytes());
    assert_eq!(report.format, LogFormat::SquidNative);
    assert_eq!(
        (report.records, report.exchanges, report.malformed),
        // The NONE line is a record without an exchange.
        (4, 3, 0)
    );
    assert!(warnings.is_empty());
    let mut want = Exchange::new(1);
    want.origin = origin("access.log", 1);
    want.request_ts = ts(T0, 147);
    want.client_ip = Some("10.1.2.3".parse().unwrap());
    want.user = Some("alice".into());
    want.request = Some(req(
        "POST",
        "https://mcp.example.com/mcp",
        HttpVersion::Http11,
        headers(&[("Host", "mcp.example.com")]),
        Body::default(),
    ));
    want.response = Some(resp(
        200,
        "",
        HttpVersion::Http11,
        headers(&[("Content-Type", "text/event-stream")]),
        Body::default(),
    ));
    assert_eq!(got[0], want);

    let connect = &got[1];
    assert_eq!(connect.origin.position, 2);
    assert_eq!(connect.method(), Some("CONNECT"));
    assert_eq!(connect.host(), Some("mcp.example.com:443"));
    assert_eq!(connect.hostname().as_deref(), Some("mcp.example.com"));
    assert_eq!(connect.user, None);
    assert!(connect.flags.tunnel);
    assert!(connect.response.as_ref().unwrap().headers.is_empty());

    let aborted = &got[2];
    assert_eq!(aborted.user.as_deref(), Some("bob smith"));
    assert_eq!(aborted.response, None);
    assert_eq!(
        aborted.flags,
        Flags {
            incomplete: true,
            ..Flags::default()
        }
    );
    assert_eq!(aborted.path(), Some("/sse"));
}

#[test]
fn squid_combined_lines_become_exchanges() {
    let log = "\
10.1.2.3 - alice [29/Nov/2026:07:25:34 +0000] \"POST https://mcp.example.com/mcp HTTP/1.1\" 200 1530 \"-\" \"claude-code/1.0 (node)\" TCP_MISS:HIER_DIRECT
10.1.2.4 - - [29/Nov/2026:08:25:35 +0100] \"CONNECT mcp.example.com:443 HTTP/1.0\" 200 4500 \"https://app.example/\" \"curl/8.5\" TCP_TUNNEL:HIER_DIRECT
";
    let (report, got, _) = run("combined.log", log.as_bytes());
    assert_eq!(report.format, LogFormat::SquidCombined);
    assert_eq!(report.exchanges, 2);
    let mut want = Exchange::new(1);
    want.origin = origin("combined.log", 1);
    want.request_ts = ts(T0, 0);
    want.client_ip = Some("10.1.2.3".parse().unwrap());
    want.user = Some("alice".into());
    want.request = Some(req(
        "POST",
        "https://mcp.example.com/mcp",
        HttpVersion::Http11,
        headers(&[
            ("Host", "mcp.example.com"),
            ("User-Agent", "claude-code/1.0 (node)"),
        ]),
        Body::default(),
    ));
    want.response = Some(resp(
        200,
        "",
        HttpVersion::Http11,
        Headers::default(),
        Body::default(),
    ));
    assert_eq!(got[0], want);
    let c = &got[1];
    assert_eq!(c.request_ts, ts(T0 + 1, 0));
    assert_eq!(c.http_version(), Some(HttpVersion::Http10));
    assert_eq!(
        c.request.as_ref().unwrap().headers.get_str("referer"),
        Some("https://app.example/")
    );
    assert!(c.flags.tunnel);
}

// ----------------------------------------------------------------- Zeek

fn zeek_tsv() -> String {
    let fields = [
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "trans_depth",
        "method",
        "host",
        "uri",
        "referrer",
        "version",
        "user_agent",
        "origin",
        "request_body_len",
        "response_body_len",
        "status_code",
        "status_msg",
        "info_code",
        "info_msg",
        "tags",
        "username",
        "password",
        "proxied",
        "orig_fuids",
        "orig_filenames",
        "orig_mime_types",
        "resp_fuids",
        "resp_filenames",
        "resp_mime_types",
    ];
    let rec1 = [
        "1795937134.147000",
        "CHhAvVGS1DHFjwGM9",
        "10.1.2.3",
        "50123",
        "203.0.113.9",
        "80",
        "1",
        "POST",
        "mcp.example.com",
        "/mcp?x=1",
        "-",
        "1.1",
        "python-httpx/0.27",
        "-",
        "120",
        "890",
        "200",
        "OK",
        "-",
        "-",
        "(empty)",
        "alice",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "text/plain",
    ];
    let rec2 = [
        "1795937135.000000",
        "C2",
        "10.1.2.4",
        "50124",
        "203.0.113.9",
        "80",
        "1",
        "GET",
        "tools.example.org",
        "/sse\\x20x",
        "http://ref.example/",
        "1.0",
        "-",
        "(empty)",
        "0",
        "0",
        "-",
        "-",
        "-",
        "-",
        "(empty)",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
    ];
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n\
         #open\t2026-11-29-07-25-34\n#fields\t{}\n#types\t{}\n{}\n{}\n#close\t2026-11-29-08-00-00\n",
        fields.join("\t"),
        vec!["string"; fields.len()].join("\t"),
        rec1.join("\t"),
        rec2.join("\t"),
    )
}

#[test]
fn zeek_tsv_records_become_exchanges() {
    let log = zeek_tsv();
    let (report, got, warnings) = run("http.log", log.as_bytes());
    assert_eq!(report.format, LogFormat::ZeekTsv);
    assert_eq!(
        (report.records, report.exchanges, report.malformed),
        (2, 2, 0),
        "{warnings:?}"
    );
    let mut want = Exchange::new(1);
    want.origin = origin("http.log", 9);
    want.request_ts = ts(T0, 147);
    want.client_ip = Some("10.1.2.3".parse().unwrap());
    want.flow = Some(Flow {
        id: crate::common::stable_id(b"CHhAvVGS1DHFjwGM9"),
        client: "10.1.2.3:50123".parse().unwrap(),
        server: "203.0.113.9:80".parse().unwrap(),
        transport: Transport::Tcp,
    });
    want.user = Some("alice".into());
    let len = |n: u64| Body {
        wire_len: n,
        decoded_len: n,
        ..Body::default()
    };
    want.request = Some(req(
        "POST",
        "/mcp?x=1",
        HttpVersion::Http11,
        headers(&[
            ("Host", "mcp.example.com"),
            ("User-Agent", "python-httpx/0.27"),
        ]),
        len(120),
    ));
    want.response = Some(resp(
        200,
        "OK",
        HttpVersion::Http11,
        Headers::default(),
        len(890),
    ));
    assert_eq!(got[0], want);
    let second = &got[1];
    assert_eq!(second.origin.position, 10);
    assert_eq!(second.path(), Some("/sse x"));
    assert_eq!(second.http_version(), Some(HttpVersion::Http10));
    let h = &second.request.as_ref().unwrap().headers;
    assert_eq!(h.get_str("referer"), Some("http://ref.example/"));
    // `(empty)` is an empty value, not a missing one.
    assert_eq!(h.get_str("origin"), None);
    assert_eq!(second.response, None);
    assert!(second.flags.incomplete);
}

#[test]
fn zeek_tsv_of_another_log_is_refused_and_bad_records_counted() {
    let conn = "#separator \\x09\n#path\tconn\n#fields\tts\tuid\n1.0\tC1\n";
    let err = run_with("conn.log", conn.as_bytes(), None, &LogConfig::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conn.log: not a known log format: a Zeek 'conn' log, not http.log"
    );

    let log = "#separator \\x09\n1.0\tC1\n#fields\tts\tuid\tmethod\turi\n1.0\tC1\tGET\n1.0\tC1\tGET\t/x\n";
    let (report, got, warnings) = run("h.log", log.as_bytes());
    assert_eq!((report.malformed, report.exchanges), (2, 1));
    assert_eq!(warnings[0], "h.log:2: record before the #fields header");
    assert_eq!(warnings[1], "h.log:4: 3 fields, the #fields header names 4");
    assert_eq!(got[0].origin.position, 5);
}

#[test]
fn zeek_json_records_become_exchanges() {
    let log = concat!(
        r#"{"ts":1795937134.147,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"10.1.2.3","id.orig_p":50123,"id.resp_h":"203.0.113.9","id.resp_p":443,"trans_depth":1,"method":"GET","host":"mcp.example.com","uri":"/sse","version":"1.1","user_agent":"node","request_body_len":0,"response_body_len":0,"status_code":200,"status_msg":"OK","tags":[],"username":"bob","resp_mime_types":["text/plain"]}"#,
        "\n",
        r#"{"ts":"2026-11-29T07:25:35.000000Z","uid":"C2","id.orig_h":"10.1.2.4","id.orig_p":1,"id.resp_h":"203.0.113.9","id.resp_p":80,"method":"POST","uri":"http://x.example/mcp","status_code":"bad"}"#,
        "\n",
    );
    let (report, got, warnings) = run("http.json", log.as_bytes());
    assert_eq!(report.format, LogFormat::ZeekJson);
    assert_eq!((report.exchanges, report.malformed), (1, 1));
    assert_eq!(warnings, vec!["http.json:2: invalid status_code 'bad'"]);
    let ex = &got[0];
    assert_eq!(ex.request_ts, ts(T0, 147));
    assert_eq!(ex.user.as_deref(), Some("bob"));
    assert_eq!(ex.host(), Some("mcp.example.com"));
    let flow = ex.flow.as_ref().unwrap();
    assert_eq!(flow.id, crate::common::stable_id(b"CHhAvVGS1DHFjwGM9"));
    assert_eq!(flow.server, "203.0.113.9:443".parse().unwrap());
    assert_eq!(ex.client_addr(), Some("10.1.2.3".parse().unwrap()));
}

// --------------------------------------------------------------- NDJSON

#[test]
fn ndjson_records_with_base64_gzip_and_sse_bodies() {
    let result = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
    let gz = gzip(result);
    let line1 = json!({
        "ts": 1795937134.147, "client_ip": "10.1.2.3", "client_port": 50123,
        "server_ip": "203.0.113.9", "server_port": 443, "user": "alice",
        "method": "POST", "url": "https://mcp.example.com/mcp?x=1", "http_version": "HTTP/1.1",
        "request_headers": [["Content-Type", "application/json"], ["Accept", "application/json, text/event-stream"]],
        "request_body": "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
        "status": 200, "reason": "OK",
        "response_headers": [["Content-Type", "application/json"], ["Content-Encoding", "gzip"]],
        "response_body": b64(&gz), "response_body_encoding": "base64",
        "future_field": {"ignored": true}
    });
    let line2 = json!({
        "version": 1, "ts": "2026-11-29T07:25:35Z", "client_ip": "10.1.2.4",
        "method": "GET", "url": "https://mcp.example.com/sse",
        "status": 200, "response_headers": [["Content-Type", "text/event-stream"]],
        "response_body": "event: endpoint\ndata: /messages?session=1\n\ndata: {\"jsonrpc\":\"2.0\"}\n\n",
        "truncated": true
    });
    let line3 = json!({"method": "POST", "url": "http://a.example/mcp", "status": 0, "client_ip": "",
                       "request_headers": {"X-Multi": ["a", "b"], "Accept": "*/*"}});
    let log = format!("{line1}\n{line2}\n\n{line3}\n");
    let (report, got, warnings) = run("proxy.ndjson", log.as_bytes());
    assert_eq!(report.format, LogFormat::Ndjson);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((report.records, report.exchanges), (3, 3));

    let mut want = Exchange::new(1);
    want.origin = origin("proxy.ndjson", 1);
    want.request_ts = ts(T0, 147);
    want.client_ip = Some("10.1.2.3".parse().unwrap());
    want.flow = Some(Flow {
        id: crate::common::stable_id(b"10.1.2.3:50123-203.0.113.9:443"),
        client: "10.1.2.3:50123".parse().unwrap(),
        server: "203.0.113.9:443".parse().unwrap(),
        transport: Transport::Tcp,
    });
    want.user = Some("alice".into());
    want.request = Some(req(
        "POST",
        "https://mcp.example.com/mcp?x=1",
        HttpVersion::Http11,
        headers(&[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Host", "mcp.example.com"),
        ]),
        text_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
    ));
    want.response = Some(resp(
        200,
        "OK",
        HttpVersion::Http11,
        headers(&[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ]),
        Body {
            data: result.to_vec(),
            wire_len: gz.len() as u64,
            decoded_len: result.len() as u64,
            encodings: vec!["gzip".into()],
            truncated: false,
            decode_error: None,
            skipped: false,
        },
    ));
    assert_eq!(got[0], want);

    let sse = &got[1];
    assert_eq!(sse.request_ts, ts(T0 + 1, 0));
    assert_eq!(sse.flow, None);
    assert!(sse.flags.truncated);
    let r = sse.response.as_ref().unwrap();
    assert_eq!(
        r.sse_events,
        vec![
            SseEvent {
                event: Some("endpoint".into()),
                data: "/messages?session=1".into(),
                ..SseEvent::default()
            },
            SseEvent {
                data: r#"{"jsonrpc":"2.0"}"#.into(),
                ..SseEvent::default()
            },
        ]
    );
    assert!(r.body.data.is_empty());

    let no_resp = &got[2];
    let h = &no_resp.request.as_ref().unwrap().headers;
    assert_eq!(
        h.iter_named("x-multi").collect::<Vec<_>>(),
        vec![&b"a"[..], b"b"]
    );
    assert_eq!(h.get_str("accept"), Some("*/*"));
    assert_eq!(h.get_str("host"), Some("a.example"));
    assert_eq!(no_resp.origin.position, 4);
    assert_eq!(no_resp.response, None);
    assert!(no_resp.flags.incomplete);
}

#[test]
fn malformed_lines_are_reported_with_line_numbers_and_skipped() {
    let good = r#"{"method":"GET","url":"http://a.example/"}"#;
    let log = format!(
        "{good}\n{{not json\n{good}\n{{\"url\":\"http://a.example/\"}}\n{{\"version\":2,\"method\":\"GET\",\"url\":\"/\"}}\n\
         {{\"method\":\"GET\",\"url\":\"/\",\"response_body\":\"!!\",\"response_body_encoding\":\"base64\",\"status\":200}}\n{good}"
    );
    let (report, got, warnings) = run("x.ndjson", log.as_bytes());
    assert_eq!(
        (report.records, report.exchanges, report.malformed),
        (7, 3, 4)
    );
    let positions: Vec<u64> = got.iter().map(|e| e.origin.position).collect();
    assert_eq!(positions, vec![1, 3, 7]);
    let ids: Vec<u64> = got.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(warnings.len(), 4);
    assert!(
        warnings[0].starts_with("x.ndjson:2: invalid JSON record"),
        "{}",
        warnings[0]
    );
    assert_eq!(warnings[1], "x.ndjson:4: missing method");
    assert_eq!(
        warnings[2],
        "x.ndjson:5: schema version 2 is newer than this reader (1)"
    );
    assert!(warnings[3].starts_with("x.ndjson:6: response_body: invalid base64"));

    // Past the cap, malformed lines are only counted.
    let config = LogConfig {
        max_reported_errors: 2,
        ..LogConfig::default()
    };
    let (report, _, warnings) = run_with("x.ndjson", log.as_bytes(), None, &config).unwrap();
    assert_eq!(report.malformed, 4);
    assert_eq!(
        warnings,
        vec![
            warnings[0].clone(),
            "x.ndjson:4: missing method".to_string(),
            "x.ndjson: more than 2 malformed records; further ones are only counted".to_string(),
        ]
    );
}

#[test]
fn overlong_lines_are_skipped_and_counted() {
    let long = format!(
        r#"{{"method":"GET","url":"http://a.example/{}"}}"#,
        "a".repeat(500)
    );
    let short = r#"{"method":"GET","url":"http://b.example/"}"#;
    let log = format!("{short}\n{long}\n{short}\n");
    let config = LogConfig {
        max_record_bytes: 100,
        ..LogConfig::default()
    };
    let (report, got, warnings) = run_with(
        "big.ndjson",
        log.as_bytes(),
        Some(LogFormat::Ndjson),
        &config,
    )
    .unwrap();
    assert_eq!((report.exchanges, report.malformed), (2, 1));
    assert_eq!(got[1].origin.position, 3);
    assert_eq!(
        warnings,
        vec![format!(
            "big.ndjson:2: line of {} bytes exceeds max_record_bytes (100)",
            long.len() + 1
        )]
    );
}

#[test]
fn body_caps_apply() {
    let line = json!({"method":"POST","url":"http://a.example/","request_body":"0123456789","status":200,"response_body":"abcdefghij"});
    let config = LogConfig {
        max_body: 4,
        ..LogConfig::default()
    };
    let (_, got, _) = run_with("c", format!("{line}\n").as_bytes(), None, &config).unwrap();
    let ex = &got[0];
    assert_eq!(ex.request.as_ref().unwrap().body.data, b"0123");
    assert_eq!(ex.response.as_ref().unwrap().body.data, b"abcd");
    assert_eq!(ex.response.as_ref().unwrap().body.decoded_len, 10);
    assert!(ex.flags.truncated);
}

// ------------------------------------------------------------------ HAR

const SSE_TEXT: &str =
    "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\ndata: two\n\n";
const RESULT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#;

fn har_doc() -> String {
    let doc = json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "mitmproxy", "version": "11.0"},
            "pages": [],
            "entries": [
                {
                    "startedDateTime": "2026-11-29T07:25:34.147Z",
                    "time": 50.0,
                    "request": {
                        "method": "POST", "url": "https://mcp.example.com/mcp", "httpVersion": "HTTP/1.1",
                        "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 44,
                        "headers": [{"name": "Host", "value": "mcp.example.com"}, {"name": "Content-Type", "value": "application/json"}],
                        "postData": {"mimeType": "application/json", "text": "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}"}
                    },
                    "response": {
                        "status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                        "headers": [{"name": "Content-Type", "value": "application/json"}, {"name": "Content-Encoding", "value": "gzip"}],
                        "content": {"size": RESULT.len(), "mimeType": "application/json", "text": b64(RESULT.as_bytes()), "encoding": "base64"},
                        "redirectURL": "", "headersSize": -1, "bodySize": 70
                    },
                    "cache": {},
                    "timings": {"blocked": 1.0, "dns": -1, "connect": 10.0, "ssl": 5.0, "send": 1.0, "wait": 20.0, "receive": 18.0}
                },
                {
                    "startedDateTime": "2026-11-29T08:25:35+01:00",
                    "request": {
                        "method": "GET", "url": "https://mcp.example.com/sse", "httpVersion": "h2",
                        "headers": [{"name": ":method", "value": "GET"}, {"name": ":authority", "value": "mcp.example.com"}, {"name": "accept", "value": "text/event-stream"}]
                    },
                    "response": {
                        "status": 200, "statusText": "", "httpVersion": "h2",
                        "headers": [{"name": "content-type", "value": "text/event-stream"}],
                        "content": {"size": SSE_TEXT.len(), "mimeType": "text/event-stream", "text": SSE_TEXT}
                    }
                },
                {
                    "startedDateTime": "2026-11-29T07:25:36Z",
                    "request": {"method": "GET", "url": "https://big.example/data", "headers": []},
                    "response": {"status": 200, "headers": [], "content": {"size": 100000, "mimeType": "application/json", "text": "{\"partial\":"}}
                },
                {
                    "startedDateTime": "2026-11-29T07:25:37Z",
                    "request": {"method": "POST", "url": "https://blocked.example/mcp", "headers": []},
                    "response": {"status": 0, "headers": [], "content": {"size": 0}}
                }
            ]
        }
    });
    serde_json::to_string_pretty(&doc).unwrap()
}

#[test]
fn har_entries_become_exchanges() {
    let doc = har_doc();
    let (report, got, warnings) = run("flows.har", doc.as_bytes());
    assert_eq!(report.format, LogFormat::Har);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        (report.records, report.exchanges, report.malformed),
        (4, 4, 0)
    );
    assert_eq!(report.truncated, None);

    let mut want = Exchange::new(1);
    want.origin = origin("flows.har", 1);
    want.request_ts = ts(T0, 147);
    // start + blocked + connect + send + wait (ssl is inside connect).
    want.response_ts = ts(T0, 147 + 32);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;
    want.request = Some(req(
        "POST",
        "https://mcp.example.com/mcp",
        HttpVersion::Http11,
        headers(&[
            ("Host", "mcp.example.com"),
            ("Content-Type", "application/json"),
        ]),
        text_body(body),
    ));
    // The text was already decoded by the exporter: not gunzipped again,
    // but the coding the server applied is recorded.
    want.response = Some(resp(
        200,
        "OK",
        HttpVersion::Http11,
        headers(&[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ]),
        Body {
            encodings: vec!["gzip".into()],
            ..text_body(RESULT.as_bytes())
        },
    ));
    assert_eq!(got[0], want);

    let sse = &got[1];
    assert_eq!(sse.request_ts, ts(T0 + 1, 0));
    assert_eq!(sse.http_version(), Some(HttpVersion::Http2));
    let rh = &sse.request.as_ref().unwrap().headers;
    assert_eq!(rh.get_str("host"), Some("mcp.example.com"));
    assert!(!rh.iter().any(|h| h.name.starts_with(':')));
    let r = sse.response.as_ref().unwrap();
    assert_eq!(r.sse_events.len(), 2);
    assert_eq!(r.sse_events[0].event.as_deref(), Some("message"));
    assert_eq!(
        r.sse_events[0].data,
        r#"{"jsonrpc":"2.0","id":2,"result":{}}"#
    );
    assert_eq!(r.sse_events[1].data, "two");
    assert_eq!(sse.flags, Flags::default());

    let cut = &got[2];
    assert!(cut.flags.truncated);
    assert_eq!(cut.response.as_ref().unwrap().body.data, b"{\"partial\":");
    assert_eq!(cut.host(), Some("big.example"));

    let blocked = &got[3];
    assert_eq!(blocked.response, None);
    assert!(blocked.flags.incomplete);
    assert_eq!(blocked.origin.position, 4);
}

#[test]
fn har_base64_of_still_compressed_content_is_decoded() {
    let gz = gzip(RESULT.as_bytes());
    let doc = json!({"log": {"entries": [{
        "request": {"method": "POST", "url": "https://a.example/mcp", "headers": []},
        "response": {"status": 200, "headers": [{"name": "Content-Encoding", "value": "gzip"}],
                     "content": {"size": RESULT.len(), "text": b64(&gz), "encoding": "base64"}}
    }]}});
    let (_, got, _) = run("z.har", doc.to_string().as_bytes());
    let body = &got[0].response.as_ref().unwrap().body;
    assert_eq!(body.data, RESULT.as_bytes());
    assert_eq!(body.wire_len, gz.len() as u64);
    assert!(!got[0].flags.truncated);
}

#[test]
fn truncated_har_yields_complete_entries_and_a_warning() {
    let doc = har_doc();
    // Cut inside the third entry.
    let cut_at = doc.find("big.example").unwrap();
    let (report, got, warnings) = run("cut.har", &doc.as_bytes()[..cut_at]);
    assert_eq!(report.exchanges, 2);
    assert_eq!(got[1].origin.position, 2);
    let msg = report.truncated.clone().unwrap();
    assert!(
        msg.starts_with("cut.har: truncated HAR: input ends inside entry 3"),
        "{msg}"
    );
    assert_eq!(warnings, vec![msg]);
}

#[test]
fn bad_har_entries_are_reported_by_index_and_line() {
    let doc = "{\"log\": {\"entries\": [\n{\"request\": {\"url\": \"x\"}},\n{\"request\": {\"method\": \"GET\", \"url\": \"http://a.example/\"}}\n]}}";
    let (report, got, warnings) = run("bad.har", doc.as_bytes());
    assert_eq!(
        (report.records, report.exchanges, report.malformed),
        (2, 1, 1)
    );
    assert_eq!(got[0].origin.position, 2);
    assert!(got[0].flags.incomplete);
    assert!(
        warnings[0]
            .starts_with("bad.har: entry 1 (line 2): invalid HAR entry: missing field `method`"),
        "{}",
        warnings[0]
    );
}

// ------------------------------------------------------------- sniffing

#[test]
fn formats_are_sniffed_and_forced() {
    let ndjson = r#"{"method":"GET","url":"http://a.example/"}"#;
    let zeek_json = r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","method":"GET","uri":"/"}"#;
    let combined = r#"10.0.0.1 - - [29/Nov/2026:07:25:34 +0000] "GET http://a.example/ HTTP/1.1" 200 5 "-" "-" TCP_MISS:HIER_DIRECT"#;
    let cases = [
        (har_doc(), LogFormat::Har),
        (r#"{"log":{"entries":[]}}"#.to_string(), LogFormat::Har),
        (format!("{ndjson}\n"), LogFormat::Ndjson),
        (format!("\u{feff}{ndjson}\r\n"), LogFormat::Ndjson),
        (format!("\u{feff}{}", har_doc()), LogFormat::Har),
        (
            r#"10.0.0.1 - - [29/Nov/2026:07:25:34 +0000] "GET /x HTTP/1.0" 200 5"#.to_string(),
            LogFormat::SquidCombined,
        ),
        (format!("\u{feff}\n{zeek_json}\n"), LogFormat::ZeekJson),
        (SQUID_NATIVE.to_string(), LogFormat::SquidNative),
        (combined.to_string(), LogFormat::SquidCombined),
        (zeek_tsv(), LogFormat::ZeekTsv),
    ];
    for (text, want) in &cases {
        assert_eq!(crate::sniff(text.as_bytes()), Some(*want), "{text}");
        let (report, _, warnings) = run("in", text.as_bytes());
        assert_eq!(report.format, *want);
        assert_eq!(report.malformed, 0, "{warnings:?}");
    }
    for f in LogFormat::ALL {
        assert_eq!(f.as_str().parse::<LogFormat>(), Ok(f));
    }
    assert!("csv"
        .parse::<LogFormat>()
        .unwrap_err()
        .contains("har, ndjson"));
    // A forced format wins: a squid line read as NDJSON is malformed.
    let (report, _, _) = run_with(
        "in",
        SQUID_NATIVE.as_bytes(),
        Some(LogFormat::Ndjson),
        &LogConfig::default(),
    )
    .unwrap();
    assert_eq!(report.malformed, 4);
}

#[test]
fn not_a_log_is_a_one_line_error() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "empty input"),
        (
            b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00",
            "a pcap capture, not a log",
        ),
        (
            b"hello world\nthis is prose\n",
            "first line is neither a Squid native nor a combined/common log line: 'hello world'",
        ),
        (
            b"{\"a\": 1}\n",
            "a JSON object without url/method (NDJSON), uid (Zeek) or log (HAR)",
        ),
        (
            b"[1, 2]",
            "a JSON array (expected a HAR document or NDJSON lines)",
        ),
        (
            b"{\"ts\":1.0,\"uid\":\"C1\",\"id.orig_h\":\"10.0.0.1\",\"proto\":\"tcp\"}\n",
            "a Zeek JSON log that is not http.log (no method, host, uri or status_code)",
        ),
        (
            b"{\n  \"version\": 1\n}",
            "a JSON document that is not a HAR (no log key first)",
        ),
    ];
    for (data, reason) in cases {
        let err = run_with("notes.txt", data, None, &LogConfig::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("notes.txt: not a known log format: {reason}")
        );
        assert!(!err.to_string().contains('\n'));
    }
    // A JSON document that is no HAR, forced as HAR.
    let err = run_with(
        "x.json",
        b"{\"a\": [1]}",
        Some(LogFormat::Har),
        &LogConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.json: not a known log format: JSON document without log.entries (not a HAR)"
    );
}

// ------------------------------------------------------------ streaming

/// A reader fed through a channel: `read` blocks until the test sends the
/// next piece; the sender hanging up is the end of input.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Sends `first`, checks that an exchange reaches the sink while the
/// reader is still waiting for more, then sends `rest` and ends.
fn assert_streams(first: &str, rest: &str, want_total: u64) {
    let (data_tx, data_rx) = mpsc::channel::<Vec<u8>>();
    let (rec_tx, rec_rx) = mpsc::channel::<Exchange>();
    let worker = std::thread::spawn(move || {
        let reader = BufReader::new(ChannelReader {
            rx: data_rx,
            buf: Vec::new(),
            pos: 0,
        });
        process_log(
            "-",
            reader,
            None,
            &LogConfig::default(),
            &ExchangeIds::new(),
            &mut |r| {
                if let Record::Exchange(ex) = r {
                    rec_tx.send(*ex).unwrap();
                }
            },
            &mut |_| {},
        )
        .unwrap()
    });
    data_tx.send(first.as_bytes().to_vec()).unwrap();
    // The input is still open (data_tx alive): the record must come anyway.
    // (The timeout only keeps a broken build from hanging the test run.)
    let ex = rec_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("no record before the end of input");
    assert_eq!(ex.origin.position, 1);
    assert!(!worker.is_finished(), "the input is still open");
    data_tx.send(rest.as_bytes().to_vec()).unwrap();
    drop(data_tx);
    let report = worker.join().unwrap();
    assert_eq!(report.exchanges, want_total);
}

#[test]
fn ndjson_records_are_handed_out_before_end_of_input() {
    let line = r#"{"method":"GET","url":"http://a.example/"}"#;
    assert_streams(&format!("{line}\n"), &format!("{line}\n"), 2);
}

#[test]
fn squid_records_are_handed_out_before_end_of_input() {
    let mut lines = SQUID_NATIVE.lines();
    let first = format!("{}\n", lines.next().unwrap());
    let rest: String = lines.map(|l| format!("{l}\n")).collect();
    assert_streams(&first, &rest, 3);
}

#[test]
fn har_entries_are_handed_out_before_end_of_input() {
    let doc = har_doc();
    // Right after the first entry's closing brace (before the comma).
    let second = doc
        .find("\"startedDateTime\": \"2026-11-29T08:25:35")
        .unwrap();
    let first_end = doc[..second].rfind('}').unwrap() + 1;
    assert_streams(&doc[..first_end], &doc[first_end..], 4);
}

#[test]
fn gzipped_logs_are_read_through_a_decoder() {
    let line = r#"{"method":"GET","url":"http://a.example/"}"#;
    let plain = format!("{line}\n").repeat(3);
    let gz = gzip(plain.as_bytes());
    let (report, got, warnings) = run("proxy.ndjson.gz", &gz);
    assert_eq!(report.format, LogFormat::Ndjson);
    assert_eq!(got.len(), 3);
    assert!(warnings.is_empty());
    // Cut short: the lines that decoded are processed, the cut is reported.
    let big = format!("{line}\n").repeat(2000);
    let gz = gzip(big.as_bytes());
    let (report, got, warnings) = run("cut.gz", &gz[..gz.len() / 2]);
    assert!(!got.is_empty() && got.len() < 2000);
    assert!(report.truncated.is_some(), "{warnings:?}");
    assert_eq!(report.malformed, 0);
}

#[test]
fn first_line_longer_than_the_look_ahead_or_malformed_still_sniffs() {
    let body = "x".repeat(100 << 10);
    let long =
        json!({"method": "POST", "url": "http://a.example/", "request_body": body, "status": 200});
    let (report, got, _) = run("long.ndjson", format!("{long}\n").as_bytes());
    assert_eq!(report.format, LogFormat::Ndjson);
    assert_eq!(got[0].request.as_ref().unwrap().body.data.len(), 100 << 10);

    let log = "{\"method\":\"GET\",\"url\":\"http://a.example/\",\n{\"method\":\"GET\",\"url\":\"http://a.example/\"}\n";
    let (report, got, warnings) = run("m.ndjson", log.as_bytes());
    assert_eq!(report.format, LogFormat::Ndjson);
    assert_eq!((report.malformed, got.len()), (1, 1));
    assert!(warnings[0].starts_with("m.ndjson:1: invalid JSON record"));
}

#[test]
fn squid_native_with_log_mime_hdrs_keeps_the_logged_headers() {
    let line = concat!(
        "1795937134.147    120 10.1.2.3 TCP_MISS/200 1530 POST https://mcp.example.com/mcp alice ",
        "HIER_DIRECT/203.0.113.9 text/event-stream ",
        r"[Host: mcp.example.com\r\nContent-Type: application/json\r\nMcp-Session-Id: abc%20def\r\n] ",
        r"[HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nMcp-Session-Id: abc\r\n\r\n]",
        "\n"
    );
    let (report, got, _) = run("mime.log", line.as_bytes());
    assert_eq!(report.format, LogFormat::SquidNative);
    let ex = &got[0];
    assert_eq!(
        ex.request.as_ref().unwrap().headers,
        headers(&[
            ("Host", "mcp.example.com"),
            ("Content-Type", "application/json"),
            ("Mcp-Session-Id", "abc def"),
        ])
    );
    assert_eq!(
        ex.response.as_ref().unwrap().headers,
        headers(&[
            ("Content-Type", "text/event-stream"),
            ("Mcp-Session-Id", "abc"),
        ])
    );
}

#[test]
fn unreadable_input_is_a_one_line_io_error() {
    let Err(err) = crate::open_log("/nonexistent/proxy.log") else {
        panic!("opened a missing file");
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with("/nonexistent/proxy.log: cannot read: "),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    // A directory opens but cannot be read.
    let dir = std::env::temp_dir();
    let name = dir.to_string_lossy().into_owned();
    let reader = crate::open_log(&name).unwrap();
    let err = process_log(
        &name,
        reader,
        None,
        &LogConfig::default(),
        &ExchangeIds::new(),
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err}");
}
