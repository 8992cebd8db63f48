//! HAR 1.2 (W3C Web Performance WG draft "HTTP Archive (HAR) format",
//! <http://www.softwareishard.com/blog/har-12-spec/>): each element of
//! `log.entries` is one exchange.
//!
//! Entries are split out of the document incrementally
//! ([`HarSplitter`](crate::json_split::HarSplitter)) and parsed one by one
//! with serde_json, so a HAR of any size is read in bounded memory, every
//! entry is handed out as soon as its closing brace arrives, and a HAR cut
//! mid-file still yields every entry before the cut.
//!
//! Mapping: `startedDateTime` → `request_ts`; `startedDateTime` plus the
//! `timings` before `receive` → `response_ts`; `request.url` → target (absolute
//! URL); HTTP/2 pseudo-headers are dropped except `:authority`, which
//! becomes `Host` when there is none; `postData.text` (or its `params`)
//! → request body; `response.content.text` (`encoding: "base64"` decoded)
//! → response body, content-decoded only if it still is (see
//! `common::Encoded::Auto`); `content.size` larger than the text, a missing
//! text with a non-zero size, or a `_truncated: true` marker → `truncated`;
//! `status` 0 (no response: blocked, failed, aborted) → no response,
//! `incomplete`.

use std::io::{self, BufRead};

use base64::Engine;
use serde::Deserialize;
use shadowmcp_exchange::{Headers, HttpVersion, Timestamp};

use crate::common::{self, Encoded};
use crate::json_split::{HarSplitter, Piece};
use crate::time::parse_rfc3339;
use crate::{Ctx, LogConfig, LogError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: Option<String>,
    request: HarRequest,
    response: Option<HarResponse>,
    timings: Option<Timings>,
    #[serde(rename = "_truncated")]
    truncated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    http_version: Option<String>,
    #[serde(default)]
    headers: Vec<NameValue>,
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    mime_type: Option<String>,
    text: Option<String>,
    /// Not in HAR 1.2, but written by some tools like `content.encoding`.
    encoding: Option<String>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(rename = "_truncated")]
    truncated: Option<bool>,
}

#[derive(Deserialize)]
struct Param {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarResponse {
    status: f64,
    status_text: Option<String>,
    http_version: Option<String>,
    #[serde(default)]
    headers: Vec<NameValue>,
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    size: Option<f64>,
    mime_type: Option<String>,
    text: Option<String>,
    encoding: Option<String>,
    #[serde(rename = "_truncated")]
    truncated: Option<bool>,
}

/// Phases before the response starts arriving, in milliseconds (-1: does
/// not apply). `ssl` is part of `connect` (HAR 1.2), so it is not added.
#[derive(Deserialize)]
struct Timings {
    blocked: Option<f64>,
    dns: Option<f64>,
    connect: Option<f64>,
    send: Option<f64>,
    wait: Option<f64>,
}

pub(crate) fn run(src: &mut impl BufRead, ctx: &mut Ctx<'_>) -> Result<(), LogError> {
    let mut splitter = HarSplitter::new(ctx.config.max_record_bytes);
    let mut pieces = Vec::new();
    loop {
        let chunk = match src.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                drain(&mut pieces, ctx);
                return ctx.read_failed(source);
            }
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        let res = splitter.feed(chunk, &mut |p| pieces.push(p));
        src.consume(len);
        drain(&mut pieces, ctx);
        if let Err(reason) = res {
            if ctx.report.records == 0 {
                return Err(LogError::UnknownFormat {
                    input: ctx.input.to_string(),
                    reason,
                });
            }
            ctx.cut(format!(
                "{}: HAR broken after entry {}: {reason}; later entries skipped",
                ctx.input,
                splitter.entries_started()
            ));
            return Ok(());
        }
    }
    if let Some(why) = splitter.unfinished() {
        ctx.cut(format!(
            "{}: truncated HAR: {why}; every complete entry before it was read",
            ctx.input
        ));
    } else if !splitter.seen_entries() {
        if !splitter.is_done() {
            return Err(LogError::UnknownFormat {
                input: ctx.input.to_string(),
                reason: "empty input".into(),
            });
        }
        return Err(LogError::UnknownFormat {
            input: ctx.input.to_string(),
            reason: "JSON document without log.entries (not a HAR)".into(),
        });
    }
    Ok(())
}

fn drain(pieces: &mut Vec<Piece>, ctx: &mut Ctx<'_>) {
    for piece in pieces.drain(..) {
        ctx.report.records += 1;
        match piece {
            Piece::Entry { index, line, bytes } => match parse_entry(&bytes, ctx.config) {
                Ok(ex) => ctx.emit(ex, index),
                Err(reason) => ctx.malformed(
                    &format!("{}: entry {index} (line {line})", ctx.input),
                    &reason,
                ),
            },
            Piece::Oversize { index, line, len } => ctx.malformed(
                &format!("{}: entry {index} (line {line})", ctx.input),
                &format!(
                    "entry of {len} bytes exceeds max_record_bytes ({})",
                    ctx.config.max_record_bytes
                ),
            ),
        }
    }
}

fn headers_of(list: &[NameValue]) -> Headers {
    let mut h = Headers::default();
    let has_host = list.iter().any(|nv| nv.name.eq_ignore_ascii_case("host"));
    for nv in list {
        if nv.name.eq_ignore_ascii_case(":authority") {
            if !has_host {
                h.push("Host", nv.value.as_str());
            }
        } else if !nv.name.starts_with(':') {
            h.push(nv.name.as_str(), nv.value.as_str());
        }
    }
    h
}

/// `text` as bytes: base64-decoded when `encoding` says so.
fn text_bytes(text: &str, encoding: Option<&str>) -> Result<Vec<u8>, String> {
    match encoding.map(str::trim) {
        Some(e) if e.eq_ignore_ascii_case("base64") => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|e| format!("invalid base64 content: {e}"))
        }
        Some(e)
            if !e.is_empty()
                && !e.eq_ignore_ascii_case("utf8")
                && !e.eq_ignore_ascii_case("utf-8") =>
        {
            Err(format!("unknown content encoding '{e}'"))
        }
        _ => Ok(text.as_bytes().to_vec()),
    }
}

fn form_body(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={}", p.name, v),
            None => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn ms_to_nanos(ms: Option<f64>) -> i64 {
    match ms {
        Some(v) if v.is_finite() && v > 0.0 && v < 1e12 => (v * 1e6) as i64,
        _ => 0,
    }
}

fn parse_entry(
    bytes: &[u8],
    config: &LogConfig,
) -> Result<Box<shadowmcp_exchange::Exchange>, String> {
    let entry: Entry =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid HAR entry: {e}"))?;
    let mut ex = common::exchange();
    let started = match entry.started_date_time.as_deref() {
        Some(s) => Some(parse_rfc3339(s).ok_or_else(|| format!("invalid startedDateTime '{s}'"))?),
        None => None,
    };
    ex.request_ts = started;
    let mut truncated = entry.truncated == Some(true);

    let req = entry.request;
    let version = req
        .http_version
        .as_deref()
        .and_then(common::parse_version)
        .unwrap_or(HttpVersion::Http11);
    let mut req_headers = headers_of(&req.headers);
    if !req_headers.contains("host") {
        common::push_host(&mut req_headers, &req.url);
    }
    let req_body = match &req.post_data {
        Some(pd) => {
            truncated |= pd.truncated == Some(true);
            if pd.mime_type.is_some() && !req_headers.contains("content-type") {
                if let Some(mt) = pd.mime_type.as_deref().filter(|m| !m.is_empty()) {
                    req_headers.push("Content-Type", mt);
                }
            }
            let raw = match &pd.text {
                Some(t) => text_bytes(t, pd.encoding.as_deref())?,
                None => form_body(&pd.params).into_bytes(),
            };
            common::make_body(&req_headers, &raw, Encoded::Auto, config.max_body)
        }
        None => common::make_body(&req_headers, b"", Encoded::Auto, config.max_body),
    };
    truncated |= req_body.truncated;
    ex.request = Some(common::request(
        &req.method,
        &req.url,
        version,
        req_headers,
        req_body,
    ));

    match entry.response {
        Some(resp) if resp.status >= 1.0 && resp.status <= 999.0 => {
            let status = resp.status as u16;
            let mut headers = headers_of(&resp.headers);
            let rversion = resp
                .http_version
                .as_deref()
                .and_then(common::parse_version)
                .unwrap_or(version);
            let (raw, logged_size) = match &resp.content {
                Some(c) => {
                    truncated |= c.truncated == Some(true);
                    if !headers.contains("content-type") {
                        if let Some(mt) = c.mime_type.as_deref().filter(|m| !m.is_empty()) {
                            headers.push("Content-Type", mt);
                        }
                    }
                    let raw = match &c.text {
                        Some(t) => text_bytes(t, c.encoding.as_deref())?,
                        None => Vec::new(),
                    };
                    (raw, c.size)
                }
                None => (Vec::new(), None),
            };
            // `content.size` is the decoded length; less text than that
            // means the exporter cut (or omitted) the body.
            if let Some(size) = logged_size {
                if size.is_finite() && size > raw.len() as f64 {
                    truncated = true;
                }
            }
            let body = common::make_body(&headers, &raw, Encoded::Auto, config.max_body);
            let response = common::response(
                rversion,
                status,
                resp.status_text.as_deref().unwrap_or(""),
                headers,
                body,
                config,
                &mut truncated,
            );
            ex.response = Some(response);
            if let (Some(start), Some(t)) = (started, &entry.timings) {
                let before = [t.blocked, t.dns, t.connect, t.send, t.wait]
                    .into_iter()
                    .map(ms_to_nanos)
                    .fold(0i64, i64::saturating_add);
                ex.response_ts = Some(Timestamp::from_nanos(
                    start.as_nanos().saturating_add(before),
                ));
            }
            if status == 101
                || (req.method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status))
            {
                ex.flags.tunnel = true;
            }
        }
        _ => ex.flags.incomplete = true,
    }
    ex.flags.truncated = truncated;
    Ok(ex)
}
