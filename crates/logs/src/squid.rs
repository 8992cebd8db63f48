//! Squid access.log, the two built-in formats (Squid wiki,
//! "Features/LogFormat", <https://wiki.squid-cache.org/Features/LogFormat>,
//! and squid.conf `logformat`):
//!
//! - `squid` (native):
//!   `time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type`,
//!   i.e. `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt`.
//!   `time` is epoch seconds with milliseconds, `elapsed` is padded with
//!   spaces, `rfc931` is the user name (`-` if none, `%`-escaped), `type`
//!   the response Content-Type.
//! - `combined`:
//!   `remotehost rfc931 authuser [date] "method URL version" status bytes "referer" "user-agent" code:peerstatus`
//!   (`%>a %[ui %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st "%{Referer}>h" "%{User-Agent}>h" %Ss:%Sh`).
//!   The common format (the first seven fields) and Apache/nginx combined
//!   logs parse the same way.
//!
//! Neither logs bodies, nor headers unless `log_mime_hdrs` is on (native
//! lines then end with the request and response header blocks, which are
//! kept). Otherwise an exchange gets a `Host` header
//! from the URL, `Referer`/`User-Agent` when logged, and the response
//! Content-Type (native). Timestamps are the logged time. Lines for
//! transactions without a request (`NONE` method, `error:` URLs) are not
//! exchanges and are skipped. `CONNECT host:443` gives an authority-form
//! target, flagged `tunnel` when the status is 2xx. Status `000` (no
//! response) → no response, `incomplete`.

use shadowmcp_exchange::{Body, Headers, HttpVersion};

use crate::common::{self, dash_none, percent_decode};
use crate::time::{parse_clf, parse_epoch};
use crate::LineOutcome;

fn is_exchange(method: &str, url: &str) -> bool {
    !(method == "-" || method.eq_ignore_ascii_case("NONE") || url.starts_with("error:"))
}

struct Fields<'a> {
    ts: Option<shadowmcp_exchange::Timestamp>,
    client: &'a str,
    user: Option<String>,
    method: &'a str,
    url: &'a str,
    version: HttpVersion,
    status: u16,
    content_type: Option<&'a str>,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    /// Header fields logged with `log_mime_hdrs on`.
    request_headers: Headers,
    response_headers: Headers,
}

fn build(f: Fields<'_>) -> LineOutcome {
    if !is_exchange(f.method, f.url) {
        return LineOutcome::NoExchange;
    }
    let mut ex = common::exchange();
    ex.request_ts = f.ts;
    ex.client_ip = f.client.parse().ok();
    ex.user = f.user;
    let mut headers = f.request_headers;
    if !headers.contains("host") {
        common::push_host(&mut headers, f.url);
    }
    if let Some(r) = f.referer.filter(|_| !headers.contains("referer")) {
        headers.push("Referer", r);
    }
    if let Some(ua) = f.user_agent.filter(|_| !headers.contains("user-agent")) {
        headers.push("User-Agent", ua);
    }
    ex.request = Some(common::request(
        f.method,
        f.url,
        f.version,
        headers,
        Body::default(),
    ));
    if f.status == 0 {
        ex.flags.incomplete = true;
    } else {
        let mut h = f.response_headers;
        if let Some(ct) = f.content_type.filter(|_| !h.contains("content-type")) {
            h.push("Content-Type", ct);
        }
        ex.response = Some(shadowmcp_exchange::Response {
            version: f.version,
            status: f.status,
            reason: String::new(),
            headers: h,
            body: Body::default(),
            trailers: Headers::default(),
            sse_events: Vec::new(),
        });
        if f.method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&f.status) {
            ex.flags.tunnel = true;
        }
    }
    LineOutcome::Exchange(ex)
}

fn status(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(v) if v <= 999 && s.len() <= 3 => Ok(v),
        _ => Err(format!("invalid HTTP status '{s}'")),
    }
}

/// One line of the native format.
pub(crate) fn parse_native(line: &[u8]) -> LineOutcome {
    match native(line) {
        Ok(o) => o,
        Err(e) => LineOutcome::Malformed(e),
    }
}

fn native(line: &[u8]) -> Result<LineOutcome, String> {
    let text = std::str::from_utf8(line).map_err(|_| "line is not UTF-8".to_string())?;
    let (t, rest) = take_tokens(text, 10);
    let [time, elapsed, client, code, _bytes, method, url, user, _hier, mime] = t[..] else {
        return Err(format!(
            "expected 10 fields (squid native format), found {}",
            t.len()
        ));
    };
    let ts = parse_epoch(time).ok_or_else(|| format!("invalid time '{time}'"))?;
    if elapsed.parse::<i64>().is_err() {
        return Err(format!("invalid elapsed time '{elapsed}'"));
    }
    let (_, st) = code
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid code/status '{code}'"))?;
    let (request_headers, response_headers) = mime_blobs(rest);
    Ok(build(Fields {
        ts: Some(ts),
        client,
        user: dash_none(user).map(percent_decode),
        method,
        url,
        version: HttpVersion::Http11,
        status: status(st)?,
        content_type: dash_none(mime),
        referer: None,
        user_agent: None,
        request_headers,
        response_headers,
    }))
}

/// The first `n` whitespace-separated fields and the rest of the line.
fn take_tokens(text: &str, n: usize) -> (Vec<&str>, &str) {
    let mut tokens = Vec::with_capacity(n);
    let mut rest = text;
    while tokens.len() < n {
        let t = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if t.is_empty() {
            return (tokens, t);
        }
        let end = t.find(|c: char| c.is_ascii_whitespace()).unwrap_or(t.len());
        tokens.push(t.get(..end).unwrap_or_default());
        rest = t.get(end..).unwrap_or_default();
    }
    (tokens, rest)
}

/// `log_mime_hdrs on` appends `[request headers] [response headers]` to
/// native lines: header lines separated by the two-character sequences
/// `\r\n`, control and non-ASCII bytes (and, in some versions, `[`, `]`,
/// `%` and other URL-unsafe characters) `%XX`-escaped (Squid's
/// `log_quote`). A header value containing a literal `] [` would be
/// misread; Squid versions that escape brackets never write one.
fn mime_blobs(rest: &str) -> (Headers, Headers) {
    let rest = rest.trim();
    let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return (Headers::default(), Headers::default());
    };
    let (req, resp) = inner.split_once("] [").unwrap_or((inner, ""));
    (blob_headers(req), blob_headers(resp))
}

fn blob_headers(blob: &str) -> Headers {
    let mut h = Headers::default();
    for line in blob.split("\\r\\n").flat_map(|l| l.split("\\n")) {
        // The response blob starts with its status line, which has no
        // field name.
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c == '/') {
            continue;
        }
        h.push(percent_decode(name), percent_decode(value.trim()));
    }
    h
}

/// Splits a combined-format line into fields: bare words, `[bracketed]`
/// and `"quoted"` (with `\"` and `\\` escapes) fields.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { break };
        let mut tok = String::new();
        match c {
            '[' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(c) => tok.push(c),
                        None => return Err("unterminated [date] field".into()),
                    }
                }
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => tok.push(e),
                            Some(e) => {
                                tok.push('\\');
                                tok.push(e);
                            }
                            None => return Err("unterminated quoted field".into()),
                        },
                        Some(c) => tok.push(c),
                        None => return Err("unterminated quoted field".into()),
                    }
                }
            }
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
                    tok.push(c);
                }
            }
        }
        out.push(tok);
    }
    Ok(out)
}

/// One line of the combined (or common) format.
pub(crate) fn parse_combined(line: &[u8]) -> LineOutcome {
    match combined(line) {
        Ok(o) => o,
        Err(e) => LineOutcome::Malformed(e),
    }
}

fn combined(line: &[u8]) -> Result<LineOutcome, String> {
    let text = String::from_utf8_lossy(line);
    let t = tokens(&text)?;
    if t.len() < 7 {
        return Err(format!(
            "expected at least 7 fields (combined/common format), found {}",
            t.len()
        ));
    }
    let field = |i: usize| t.get(i).map(String::as_str).unwrap_or("-");
    let ts = parse_clf(field(3)).ok_or_else(|| format!("invalid date '[{}]'", field(3)))?;
    let request = field(4);
    let mut parts = request.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(url)) = (parts.next(), parts.next()) else {
        if request == "-" {
            return Ok(LineOutcome::NoExchange);
        }
        return Err(format!("invalid request line '{request}'"));
    };
    let version = match parts.next() {
        Some(v) => common::parse_version(v).unwrap_or(HttpVersion::Http11),
        None => HttpVersion::Http10,
    };
    if parts.next().is_some() {
        return Err(format!("invalid request line '{request}'"));
    }
    let user = dash_none(field(2))
        .or(dash_none(field(1)))
        .map(percent_decode);
    Ok(build(Fields {
        ts: Some(ts),
        client: field(0),
        user,
        method,
        url,
        version,
        status: status(field(5))?,
        content_type: None,
        referer: dash_none(field(7)),
        user_agent: dash_none(field(8)),
        request_headers: Headers::default(),
        response_headers: Headers::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_handles_brackets_and_quotes() {
        let t = tokens(r#"a - b [29/Nov/2026:07:25:34 +0000] "GET /x HTTP/1.1" 200 5 "-" "ua \"q\" \\ z" TCP_MISS:HIER_DIRECT"#)
            .unwrap();
        assert_eq!(t[3], "29/Nov/2026:07:25:34 +0000");
        assert_eq!(t[4], "GET /x HTTP/1.1");
        assert_eq!(t[8], r#"ua "q" \ z"#);
        assert_eq!(t[9], "TCP_MISS:HIER_DIRECT");
        assert!(tokens("a [open").is_err());
        assert!(tokens("a \"open").is_err());
    }
}
