//! Evaluating compiled rules against one exchange.

use std::borrow::Cow;

use serde_json::Value;
use shadowmcp_exchange::{Exchange, Headers, SseEvent};
use shadowmcp_jsonrpc::{analyze, analyze_sse_event, Analysis, Evidence, PayloadKind, Signal};
use shadowmcp_rules::{Confidence, KnownServer};

use crate::compile::{BodyField, CCond, CField, COp, CTest, MARK_ESCAPE, MARK_JSONRPC, MARK_MCP};
use crate::{rank, transport, Detection, Detector, RuleMatch};

/// Everything rules can look at, extracted once per call.
struct Ctx<'a> {
    host: Option<String>,
    sni: Option<String>,
    path: Option<&'a [u8]>,
    full_path: &'a str,
    method: Option<&'a [u8]>,
    req_headers: Option<&'a Headers>,
    resp_headers: Option<&'a Headers>,
    header_cap: usize,
    /// Request and response body as rules see them: capped, and only when
    /// they look like JSON.
    bodies: [Option<&'a [u8]>; 2],
    /// (event type, capped data) of each inspected SSE event.
    sse: Vec<(&'a str, &'a [u8])>,
    hits: [Vec<bool>; 3],
    analysis: Analysis,
    /// JSON payloads `json_pointer` conditions look into, parsed into trees
    /// only when a rule first asks (most exchanges never reach one).
    json_sources: Vec<&'a [u8]>,
    json: std::cell::OnceCell<Vec<Value>>,
    known: Option<&'a [KnownServer]>,
}

/// Bytes `data` starts with once a UTF-8 BOM and whitespace are skipped.
fn first_significant(data: &[u8]) -> Option<u8> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    data.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn content_type(h: &Headers) -> Option<String> {
    h.get("content-type")
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
}

fn json_content_type(ct: &str) -> bool {
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime == "application/json"
        || mime.ends_with("+json")
        || mime.ends_with("/json")
        || mime == "application/json-rpc"
        || mime == "application/jsonrequest"
}

/// A body rules may look at: JSON content type, or no/neutral content type
/// and a body that starts like JSON. Keeps quoted MCP JSON in HTML or
/// Markdown pages from firing body rules.
fn json_like(ct: Option<&str>, data: &[u8]) -> bool {
    match ct {
        Some(ct) if json_content_type(ct) => true,
        Some(ct)
            if !(ct.is_empty()
                || ct.starts_with("text/plain")
                || ct.starts_with("application/octet-stream")) =>
        {
            false
        }
        _ => matches!(first_significant(data), Some(b'{' | b'[')),
    }
}

/// Whether a body could hold a JSON-RPC message: the `jsonrpc` key, or the
/// key with one of its letters written as a `\u00XX` escape (an ASCII
/// letter has no other escaped form). A bare `\u` is not enough: random
/// bytes of compressed downloads hold one every 64 KiB or so.
fn may_hold_jsonrpc(data: &[u8]) -> bool {
    if memchr::memmem::find(data, b"jsonrpc").is_some() {
        return true;
    }
    memchr::memmem::find_iter(data, b"\\u00").any(|at| {
        let hex = |i: usize| data.get(at + i).and_then(|&b| (b as char).to_digit(16));
        match (hex(4), hex(5)) {
            (Some(hi), Some(lo)) => b"jsonrpc".contains(&((hi * 16 + lo) as u8)),
            _ => false,
        }
    })
}

fn cap(data: &[u8], max: usize) -> (&[u8], bool) {
    match data.get(..max) {
        Some(head) if head.len() < data.len() => (head, true),
        _ => (data, false),
    }
}

pub(crate) fn inspect(
    det: &Detector,
    ex: &Exchange,
    events: &[SseEvent],
    with_bodies: bool,
) -> Detection {
    let cfg = &det.config;
    let c = &det.compiled;
    let req = ex.request.as_ref();
    let resp = ex.response.as_ref();
    let limits = &cfg.jsonrpc_limits;
    let mut scan_truncated = false;
    let mut counter: Option<&'static str> = None;
    // The first reason found is kept.
    let note_counter = |reason: &'static str, counter: &mut Option<&'static str>| {
        counter.get_or_insert(reason);
    };

    let host = ex.hostname().map(|h| h.trim_end_matches('.').to_string());
    let known = host
        .as_deref()
        .and_then(|h| c.known.get(h))
        .map(Vec::as_slice);
    let full_path = req.map(|r| r.path()).unwrap_or("");
    let (path, cut) = match req {
        Some(r) => {
            let (p, cut) = cap(r.path().as_bytes(), cfg.max_header_scan);
            (Some(p), cut)
        }
        None => (None, false),
    };
    scan_truncated |= cut;

    let mut ctx = Ctx {
        host,
        sni: ex
            .tls
            .as_ref()
            .and_then(|t| t.sni.as_deref())
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
        path,
        full_path,
        method: req.map(|r| r.method.as_bytes()),
        req_headers: req.map(|r| &r.headers),
        resp_headers: resp.map(|r| &r.headers),
        header_cap: cfg.max_header_scan,
        bodies: [None, None],
        sse: Vec::new(),
        hits: [
            vec![false; c.prefilters[0].atoms.len()],
            vec![false; c.prefilters[1].atoms.len()],
            vec![false; c.prefilters[2].atoms.len()],
        ],
        analysis: Analysis::new(limits),
        json_sources: Vec::new(),
        json: std::cell::OnceCell::new(),
        known,
    };

    // Request and response bodies.
    if with_bodies {
        let sides = [
            (BodyField::Request, req.map(|r| (&r.headers, &r.body)), true),
            (
                BodyField::Response,
                resp.map(|r| (&r.headers, &r.body)),
                resp.is_some_and(|r| r.status == 200),
            ),
        ];
        for (which, side, counts) in sides {
            let Some((headers, body)) = side else {
                continue;
            };
            let non_json = if which == BodyField::Request {
                "non_json_request_body"
            } else {
                "non_json_response"
            };
            if body.skipped {
                // Its source skipped it for a media type that cannot carry
                // MCP: the same counter-evidence as a scanned non-JSON body.
                if counts {
                    note_counter(non_json, &mut counter);
                }
                continue;
            }
            let data = &body.data;
            if data.is_empty() {
                continue;
            }
            let i = which as usize;
            let ct = content_type(headers);
            if which == BodyField::Response
                && ct
                    .as_deref()
                    .is_some_and(|t| t.starts_with("text/event-stream"))
                && !events.is_empty()
            {
                // The parsed events carry this body; do not count it twice.
                continue;
            }
            let (scan, cut) = cap(data, cfg.max_body_scan);
            scan_truncated |= cut;
            let looks_json = json_like(ct.as_deref(), scan);
            let is_sse_body = ct
                .as_deref()
                .is_some_and(|t| t.starts_with("text/event-stream"));
            // Most bytes on the wire are pages, scripts and downloads. A
            // body that does not look like JSON and contains neither the
            // literal `jsonrpc` (every JSON-RPC 2.0 message carries that
            // lower-case key) nor an escape that could spell one of its
            // letters can hold no JSON-RPC message: SIMD substring searches
            // decide that, instead of the rule automaton
            // (docs/performance.md, "Shortcuts"; tested in
            // tests/near_miss_evasion.rs).
            let skip = cfg.skip_non_jsonrpc_bodies
                && !looks_json
                && !is_sse_body
                && !may_hold_jsonrpc(scan);
            let selected = !skip && {
                c.prefilters[i].scan(scan, &mut ctx.hits[i]);
                looks_json
                    || is_sse_body
                    || ctx.hits[i]
                        .get(c.markers[i][MARK_JSONRPC])
                        .copied()
                        .unwrap_or(false)
            };
            if !selected {
                if counts {
                    note_counter(non_json, &mut counter);
                }
                continue;
            }
            let marker = |k: usize| ctx.hits[i].get(c.markers[i][k]).copied().unwrap_or(false);
            // Parsing is the costly step: a large, fully scanned JSON body
            // with no marker literal and no escape cannot hold an MCP
            // message, so it is not parsed.
            if !cut
                && !is_sse_body
                && data.len() > cfg.always_analyze_below
                && ![MARK_JSONRPC, MARK_MCP, MARK_ESCAPE]
                    .into_iter()
                    .any(marker)
            {
                if counts {
                    note_counter("non_mcp_payload", &mut counter);
                }
                ctx.bodies[i] = looks_json.then_some(scan);
                continue;
            }
            let a = analyze(data, limits);
            if counts && shows_not_mcp(&a) {
                note_counter("non_mcp_payload", &mut counter);
            }
            if looks_json || a.kind == PayloadKind::JsonRpc {
                ctx.bodies[i] = Some(scan);
                if c.uses_json_pointer
                    && a.kind >= PayloadKind::Json
                    && data.len() <= cfg.max_json_pointer_bytes
                {
                    ctx.json_sources.push(data);
                }
            }
            ctx.analysis.merge(a);
        }
    }

    // Server-sent events.
    let mut budget = cfg.max_body_scan;
    if events.len() > cfg.max_sse_events {
        scan_truncated = true;
    }
    for ev in events.iter().take(cfg.max_sse_events) {
        let kind = ev.event.as_deref().unwrap_or("message");
        let data = ev.data.as_bytes();
        let (scan, cut) = cap(data, budget.min(cfg.max_body_scan));
        scan_truncated |= cut;
        budget = budget.saturating_sub(scan.len());
        c.prefilters[2].scan(scan, &mut ctx.hits[2]);
        ctx.sse.push((kind, scan));
        if data.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let a = analyze_sse_event(ev.event.as_deref(), scan, limits);
        if shows_not_mcp(&a) {
            note_counter("non_mcp_payload", &mut counter);
        }
        if c.uses_json_pointer
            && a.kind >= PayloadKind::Json
            && scan.len() <= cfg.max_json_pointer_bytes
        {
            ctx.json_sources.push(scan);
        }
        ctx.analysis.merge(a);
        if budget == 0 {
            scan_truncated = true;
            break;
        }
    }

    // Near-miss protocols outrank payload-shape counter-evidence in the report.
    let strong = ctx.analysis.evidence == Evidence::Strong;
    if !strong {
        if let Some(s) = ctx
            .analysis
            .signals
            .iter()
            .find(|s| s.as_str().starts_with("near_miss_"))
        {
            counter = Some(s.as_str());
        }
    }
    if ctx.analysis.evidence > Evidence::None {
        // Some MCP evidence: payload shapes no longer argue against it.
        counter = counter.filter(|c| c.starts_with("near_miss_"));
        if strong {
            counter = None;
        }
    }
    // A 2xx HTML/other page is not an MCP endpoint's answer.
    if counter.is_none() && with_bodies && !strong {
        if let Some(r) = resp {
            let ct = content_type(&r.headers).unwrap_or_default();
            if r.status == 200 && ct.starts_with("text/html") {
                counter = Some("non_json_response");
            }
        }
    }

    // Rules.
    let mut matches = Vec::new();
    let mut suppressed = Vec::new();
    let mut low_layers = 0u8;
    let mut low_count = 0usize;
    for rule in &c.rules {
        if !eval_cond(&rule.cond, &ctx, None) {
            continue;
        }
        let m = RuleMatch {
            id: rule.id,
            name: rule.name.clone(),
            category: rule.category.clone(),
            severity: rule.severity,
            confidence: rule.confidence,
            circumstantial: rule.circumstantial,
        };
        if rule.circumstantial && counter.is_some() {
            suppressed.push(m);
        } else {
            if rule.confidence == Confidence::Low {
                low_layers |= rule.layers;
                low_count += 1;
            }
            matches.push(m);
        }
    }
    matches.sort_by_key(rank);
    let mut confidence = matches.iter().map(|m| m.confidence).max();
    if confidence == Some(Confidence::Low) {
        // Two weak rules on independent layers (e.g. host and path)
        // corroborate each other.
        if low_count >= 2 && low_layers.count_ones() >= 2 {
            confidence = Some(Confidence::Medium);
        }
    }

    let a = &ctx.analysis;
    let mut d = Detection {
        category: matches.first().map(|m| m.category.clone()),
        matches,
        suppressed,
        confidence,
        methods: a.methods.clone(),
        protocol_version: a.protocol_version.clone().or_else(|| {
            req.and_then(|r| r.headers.get_str("mcp-protocol-version"))
                .filter(|v| !v.is_empty() && v.len() <= 64)
                .map(str::to_string)
        }),
        session_id: session_id(ex, events),
        client: a.client_info.clone(),
        server_info: a.server_info.clone(),
        tools_called: a.tools_called.clone(),
        provider_mcp_servers: a.provider_mcp_servers.clone(),
        transport: None,
        signals: a.signals.iter().map(Signal::as_str).collect(),
        counter_evidence: counter,
        scan_truncated,
    };
    if d.is_mcp() {
        d.transport = Some(transport_of(&d, ex, a));
    } else {
        // Only MCP exchanges describe an MCP conversation.
        d.tools_called.clear();
        d.client = None;
        d.server_info = None;
        d.session_id = None;
        d.protocol_version = None;
    }
    d
}

/// A payload that was read completely and is plain JSON, non-JSON, or
/// JSON-RPC of no known protocol, with no MCP evidence. A payload cut by a
/// cap or recovered from broken JSON proves nothing either way.
fn shows_not_mcp(a: &Analysis) -> bool {
    a.evidence == Evidence::None
        && !a.truncated
        && !a.has(Signal::RecoveredParse)
        && (a.kind < PayloadKind::JsonRpc || a.has(Signal::JsonRpcOther))
}

fn transport_of(d: &Detection, ex: &Exchange, a: &Analysis) -> &'static str {
    let req = ex.request.as_ref();
    let has = |name: &str| req.is_some_and(|r| r.headers.contains(name));
    if d.matches.iter().any(|m| m.category == "mcp-provider") || !a.provider_mcp_servers.is_empty()
    {
        return transport::PROVIDER;
    }
    if d.matches.iter().any(|m| m.category == "mcp-websocket")
        || req.is_some_and(|r| {
            r.headers
                .get_str("upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        })
    {
        return transport::WEBSOCKET;
    }
    let legacy_query = query_session_id(ex.path().unwrap_or("")).is_some();
    if a.has(Signal::SseEndpoint)
        || d.matches.iter().any(|m| m.category == "mcp-legacy-sse")
        || (legacy_query && !has("mcp-session-id"))
    {
        return transport::LEGACY_SSE;
    }
    let mcp_headers = ["mcp-session-id", "mcp-protocol-version", "mcp-method"]
        .iter()
        .any(|h| has(h))
        || ex
            .response
            .as_ref()
            .is_some_and(|r| r.headers.contains("mcp-session-id"));
    let post_jsonrpc = req.is_some_and(|r| r.method.eq_ignore_ascii_case("POST"))
        && a.kind == PayloadKind::JsonRpc;
    if mcp_headers || post_jsonrpc {
        return transport::STREAMABLE_HTTP;
    }
    transport::UNKNOWN
}

const MAX_SESSION_ID: usize = 256;

fn session_id(ex: &Exchange, events: &[SseEvent]) -> Option<String> {
    let header = ex
        .request
        .as_ref()
        .and_then(|r| r.headers.get_str("mcp-session-id"))
        .or_else(|| {
            ex.response
                .as_ref()
                .and_then(|r| r.headers.get_str("mcp-session-id"))
        });
    if let Some(h) = header.filter(|h| !h.is_empty() && h.len() <= MAX_SESSION_ID) {
        return Some(h.to_string());
    }
    events
        .iter()
        .filter(|e| e.event.as_deref() == Some("endpoint"))
        .find_map(|e| query_session_id(&e.data))
        .or_else(|| query_session_id(ex.path().unwrap_or("")))
}

/// `sessionId` / `session_id` query parameter of a URL or path.
fn query_session_id(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let v = v.trim();
        ((k == "sessionId" || k == "session_id") && !v.is_empty() && v.len() <= MAX_SESSION_ID)
            .then(|| v.to_string())
    })
}

/// `event`: when set, SSE fields only see that event.
fn eval_cond(cond: &CCond, ctx: &Ctx<'_>, event: Option<usize>) -> bool {
    match cond {
        CCond::All(list) => list.iter().all(|c| eval_cond(c, ctx, event)),
        CCond::AllSameEvent(list) => match event {
            Some(_) => list.iter().all(|c| eval_cond(c, ctx, event)),
            None => (0..ctx.sse.len()).any(|i| list.iter().all(|c| eval_cond(c, ctx, Some(i)))),
        },
        CCond::Any(list) => list.iter().any(|c| eval_cond(c, ctx, event)),
        CCond::Not(c) => !eval_cond(c, ctx, event),
        CCond::Test(t) => eval_test(t, ctx, event),
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

fn header_values<'a>(
    h: Option<&'a Headers>,
    name: &'a str,
    max: usize,
) -> Vec<Option<Cow<'a, [u8]>>> {
    h.map(|h| {
        h.iter_named(name)
            .map(|v| Some(Cow::Borrowed(trim(cap(v, max).0))))
            .collect()
    })
    .unwrap_or_default()
}

/// The values a test looks at. `None` entries are present but not scalar
/// (a JSON object or array): they only satisfy `exists`.
fn values<'a>(t: &'a CTest, ctx: &'a Ctx<'a>, event: Option<usize>) -> Vec<Option<Cow<'a, [u8]>>> {
    let b = |s: &'a [u8]| Some(Cow::Borrowed(s));
    let events = match event {
        Some(i) => ctx.sse.get(i..=i).unwrap_or_default(),
        None => ctx.sse.as_slice(),
    };
    match &t.field {
        CField::Host => ctx
            .host
            .as_deref()
            .map(str::as_bytes)
            .map(b)
            .into_iter()
            .collect(),
        CField::Path => ctx.path.map(b).into_iter().collect(),
        CField::TlsSni => ctx
            .sni
            .as_deref()
            .map(str::as_bytes)
            .map(b)
            .into_iter()
            .collect(),
        CField::HttpMethod => ctx.method.map(b).into_iter().collect(),
        CField::RequestHeader(n) => header_values(ctx.req_headers, n, ctx.header_cap),
        CField::ResponseHeader(n) => header_values(ctx.resp_headers, n, ctx.header_cap),
        CField::Body(BodyField::Sse) => events.iter().map(|(_, d)| b(d)).collect(),
        CField::Body(which) => ctx.bodies[*which as usize].map(b).into_iter().collect(),
        CField::SseEvent => events.iter().map(|(k, _)| b(k.as_bytes())).collect(),
        CField::JsonrpcMethod => ctx
            .analysis
            .methods
            .iter()
            .map(|m| b(m.as_bytes()))
            .collect(),
        CField::AnalyzerSignal => ctx
            .analysis
            .signals
            .iter()
            .map(|s| b(s.as_str().as_bytes()))
            .collect(),
        CField::KnownServer => ctx
            .known
            .and_then(|k| k.first())
            .map(|k| b(k.vendor.as_bytes()))
            .into_iter()
            .collect(),
        CField::KnownEndpoint => ctx
            .known
            .unwrap_or_default()
            .iter()
            .filter(|k| k.matches_path(ctx.full_path))
            .map(|k| b(k.vendor.as_bytes()))
            .collect(),
        CField::JsonPointer(p) => {
            let mut out = Vec::new();
            let trees = ctx.json.get_or_init(|| {
                ctx.json_sources
                    .iter()
                    .filter_map(|d| serde_json::from_slice::<Value>(d).ok())
                    .collect()
            });
            for v in trees {
                pointer_values(v, p, &mut out);
            }
            out
        }
    }
}

fn pointer_values<'a>(v: &'a Value, pointer: &str, out: &mut Vec<Option<Cow<'a, [u8]>>>) {
    let scalar = |x: &'a Value| -> Option<Cow<'a, [u8]>> {
        match x {
            Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
            Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { b"true" } else { b"false" })),
            Value::Null => Some(Cow::Borrowed(b"null")),
            Value::Array(_) | Value::Object(_) => None,
        }
    };
    if let Some(x) = v.pointer(pointer) {
        out.push(scalar(x));
    }
    // A batch: the pointer addresses each message.
    if let Value::Array(items) = v {
        for item in items {
            if let Some(x) = item.pointer(pointer) {
                out.push(scalar(x));
            }
        }
    }
}

fn eq(a: &[u8], b: &[u8], nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn eval_test(t: &CTest, ctx: &Ctx<'_>, event: Option<usize>) -> bool {
    if let CField::Body(which) = t.field {
        if !t.atom_ids.is_empty() {
            let hits = &ctx.hits[which as usize];
            if !t
                .atom_ids
                .iter()
                .any(|&i| hits.get(i).copied().unwrap_or(false))
            {
                return false;
            }
        }
    }
    let vals = values(t, ctx, event);
    if let COp::Exists(want) = t.op {
        return vals.is_empty() != want;
    }
    vals.iter().flatten().any(|v| {
        let v: &[u8] = v;
        match &t.op {
            COp::Equals(l) => l.iter().any(|x| eq(x, v, t.nocase)),
            COp::Prefix(l) => l
                .iter()
                .any(|x| v.get(..x.len()).is_some_and(|h| eq(h, x, t.nocase))),
            COp::Suffix(l) => l.iter().any(|x| {
                v.len()
                    .checked_sub(x.len())
                    .and_then(|s| v.get(s..))
                    .is_some_and(|h| eq(h, x, t.nocase))
            }),
            COp::Regex(r) => r.is_match(v),
            COp::Exists(_) => true,
        }
    })
}

#[cfg(test)]
mod shortcut_tests {
    use super::may_hold_jsonrpc;

    #[test]
    fn only_bodies_that_can_spell_jsonrpc_are_kept() {
        assert!(may_hold_jsonrpc(br#"x={"jsonrpc":"2.0"}"#));
        assert!(may_hold_jsonrpc(br#"{"\u006asonrpc":"2.0"}"#));
        assert!(may_hold_jsonrpc(br#"{"\u006Asonrpc":"2.0"}"#));
        assert!(may_hold_jsonrpc(br#"{"json\u0072pc":"2.0"}"#));
        assert!(may_hold_jsonrpc(br#"{"jsonr\u0070c":"2.0"}"#));
        assert!(!may_hold_jsonrpc(br#"<p>caf\u00e9 \u0041 \u</p>"#));
        assert!(!may_hold_jsonrpc(b"JSONRPC in capitals is not the key"));
        assert!(!may_hold_jsonrpc(br"\u00"));
        assert!(!may_hold_jsonrpc(br"\u006"));
    }
}
