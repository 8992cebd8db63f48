//! Start lines and header sections (RFC 9112 §3, §4, §5), parsed from a
//! complete head held in memory (its size is capped by the caller).

use crate::ParseErrorKind;
use shadowmcp_exchange::{Header, Headers, HttpVersion};

pub(crate) struct RequestLine {
    pub method: String,
    pub target: String,
    pub version: HttpVersion,
}

pub(crate) struct StatusLine {
    pub version: HttpVersion,
    pub status: u16,
    pub reason: String,
}

pub(crate) enum RequestStart {
    Http1(RequestLine),
    /// `PRI * HTTP/2.0`: the HTTP/2 connection preface (prior knowledge).
    Http2Preface,
}

/// Splits `buf` into lines on LF, dropping one CR before each LF (bare LF
/// is tolerated).
pub(crate) fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(mut v: &[u8]) -> &[u8] {
    while let Some((&b, rest)) = v.split_first() {
        if !is_ws(b) {
            break;
        }
        v = rest;
    }
    while let Some((&b, rest)) = v.split_last() {
        if !is_ws(b) {
            break;
        }
        v = rest;
    }
    v
}

/// `HTTP/1.x` → the version; other majors are `None`.
fn http1_version(v: &[u8]) -> Option<HttpVersion> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            Some(if *minor == b'0' {
                HttpVersion::Http10
            } else {
                HttpVersion::Http11
            })
        }
        _ => None,
    }
}

/// Quick check used while resynchronising: `METHOD SP target SP HTTP/1.x`.
pub(crate) fn is_request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(_target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(version) = parts.next_back() else {
        return false;
    };
    (1..=32).contains(&method.len())
        && method.iter().all(|&b| is_tchar(b))
        && http1_version(version).is_some()
}

/// Quick check used while resynchronising: `HTTP/1.x SP 3DIGIT`.
pub(crate) fn is_status_line(line: &[u8]) -> bool {
    line.len() >= 12
        && http1_version(line.get(..8).unwrap_or_default()).is_some()
        && line.get(8) == Some(&b' ')
        && line
            .get(9..12)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && matches!(line.get(12), None | Some(b' ') | Some(b'\r'))
}

/// Parses a request line. Non-fatal oddities go to `errors`.
pub(crate) fn parse_request_line(
    line: &[u8],
    errors: &mut Vec<ParseErrorKind>,
) -> Result<RequestStart, ParseErrorKind> {
    let parts: Vec<&[u8]> = line
        .split(|&b| is_ws(b))
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 3 {
        return Err(ParseErrorKind::InvalidRequestLine);
    }
    let (Some(method), Some(version)) = (parts.first(), parts.last()) else {
        return Err(ParseErrorKind::InvalidRequestLine);
    };
    if method.is_empty() || method.len() > 32 || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseErrorKind::InvalidRequestLine);
    }
    if *method == b"PRI" && *version == b"HTTP/2.0" {
        return Ok(RequestStart::Http2Preface);
    }
    let version = http1_version(version).ok_or(ParseErrorKind::InvalidRequestLine)?;
    let middle = parts.get(1..parts.len() - 1).unwrap_or_default();
    if middle.len() > 1 || line.contains(&b'\t') || line.windows(2).any(|w| w == b"  ") {
        // Unencoded spaces in the target, or odd whitespace: keep what was
        // meant, flag it.
        errors.push(ParseErrorKind::InvalidRequestLine);
    }
    let target = middle.join(&b' ');
    Ok(RequestStart::Http1(RequestLine {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(&target).into_owned(),
        version,
    }))
}

pub(crate) fn parse_status_line(line: &[u8]) -> Result<StatusLine, ParseErrorKind> {
    let version = http1_version(line.get(..8).unwrap_or_default())
        .ok_or(ParseErrorKind::InvalidStatusLine)?;
    let rest = line.get(8..).unwrap_or_default();
    let rest = rest
        .strip_prefix(b" ")
        .ok_or(ParseErrorKind::InvalidStatusLine)?;
    let code = rest.get(..3).ok_or(ParseErrorKind::InvalidStatusLine)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseErrorKind::InvalidStatusLine);
    }
    let status = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let reason = match rest.get(3..) {
        None | Some([]) => &b""[..],
        Some([b' ', reason @ ..]) => reason,
        Some(_) => return Err(ParseErrorKind::InvalidStatusLine),
    };
    Ok(StatusLine {
        version,
        status,
        reason: String::from_utf8_lossy(reason).into_owned(),
    })
}

/// Outcome counters of a header section.
#[derive(Default)]
pub(crate) struct HeaderNotes {
    pub obs_folds: u64,
}

/// Parses header field lines. Tolerates obs-fold (joined with one SP) and
/// whitespace before the colon (flagged); drops lines without a colon and
/// fields past `max_headers` (flagged).
pub(crate) fn parse_header_lines<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    max_headers: usize,
    errors: &mut Vec<ParseErrorKind>,
    notes: &mut HeaderNotes,
) -> Headers {
    let mut headers: Vec<Header> = Vec::new();
    let mut dropped = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.first().is_some_and(|&b| is_ws(b)) {
            // obs-fold: continuation of the previous field value.
            if let Some(last) = headers.last_mut() {
                let more = trim_ws(line);
                if !more.is_empty() {
                    if !last.value.is_empty() {
                        last.value.push(b' ');
                    }
                    last.value.extend_from_slice(more);
                }
                notes.obs_folds += 1;
            } else if !dropped {
                errors.push(ParseErrorKind::InvalidHeaderLine);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            errors.push(ParseErrorKind::InvalidHeaderLine);
            continue;
        };
        let raw_name = line.get(..colon).unwrap_or_default();
        let name = trim_ws(raw_name);
        if name.len() != raw_name.len() {
            errors.push(ParseErrorKind::WhitespaceInHeaderName);
        }
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            errors.push(ParseErrorKind::InvalidHeaderLine);
            if name.is_empty() {
                continue;
            }
        }
        if headers.len() >= max_headers {
            if !dropped {
                errors.push(ParseErrorKind::TooManyHeaders);
                dropped = true;
            }
            continue;
        }
        headers.push(Header {
            name: String::from_utf8_lossy(name).into_owned(),
            value: trim_ws(line.get(colon + 1..).unwrap_or_default()).to_vec(),
        });
    }
    Headers(headers)
}

/// Comma-separated list elements of every `name` field, trimmed and
/// lower-cased.
pub(crate) fn list_values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter_named(name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ws)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
        .collect()
}

/// The media type of Content-Type, lower-cased, parameters dropped.
pub(crate) fn media_type(headers: &Headers) -> Option<String> {
    headers.get("content-type").map(media_type_of)
}

/// The media type of one Content-Type value, lower-cased, without
/// parameters.
pub(crate) fn media_type_of(value: &[u8]) -> String {
    let mt = value.split(|&b| b == b';').next().unwrap_or_default();
    String::from_utf8_lossy(trim_ws(mt)).to_ascii_lowercase()
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
    /// Request framing that cannot be determined: the stream is lost.
    Unknown,
}

/// Body framing from Transfer-Encoding and Content-Length. `errors` gets
/// what was wrong; `smuggling` is set for the ambiguous combinations that
/// request smuggling relies on.
pub(crate) fn framing(
    headers: &Headers,
    is_request: bool,
    version: HttpVersion,
    errors: &mut Vec<ParseErrorKind>,
    smuggling: &mut bool,
) -> Framing {
    let te = list_values(headers, "transfer-encoding");
    let has_cl = headers.contains("content-length");
    if !te.is_empty() {
        if has_cl {
            errors.push(ParseErrorKind::TransferEncodingWithContentLength);
            *smuggling = true;
        }
        if version == HttpVersion::Http10 {
            // RFC 9112 §6.1: faulty framing in HTTP/1.0; decode it anyway.
            errors.push(ParseErrorKind::TransferEncodingInHttp10);
        }
        if te.last().map(String::as_str) == Some("chunked") {
            if te.iter().filter(|t| *t == "chunked").count() > 1 {
                errors.push(ParseErrorKind::UnsupportedTransferEncoding);
                *smuggling = true;
            }
            return Framing::Chunked;
        }
        errors.push(ParseErrorKind::UnsupportedTransferEncoding);
        return if is_request {
            *smuggling = true;
            Framing::Unknown
        } else {
            Framing::UntilClose
        };
    }
    if has_cl {
        let mut value: Option<u64> = None;
        let mut invalid = false;
        let mut conflicting = false;
        for v in headers
            .iter_named("content-length")
            .flat_map(|v| v.split(|&b| b == b','))
        {
            let v = trim_ws(v);
            let parsed = if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
                None
            } else {
                v.iter().try_fold(0u64, |acc, d| {
                    acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
            };
            match (parsed, value) {
                (None, _) => invalid = true,
                (Some(p), None) => value = Some(p),
                (Some(p), Some(first)) if p != first => conflicting = true,
                _ => {}
            }
        }
        if conflicting {
            errors.push(ParseErrorKind::ConflictingContentLength);
            *smuggling = true;
        }
        if invalid {
            errors.push(ParseErrorKind::InvalidContentLength);
        }
        return match value {
            // Documented choice: with conflicting values the first wins.
            Some(n) if !invalid => Framing::Length(n),
            _ if is_request => {
                *smuggling = true;
                Framing::Unknown
            }
            _ => Framing::UntilClose,
        };
    }
    if is_request {
        Framing::None
    } else {
        Framing::UntilClose
    }
}

/// Offset just past the blank line that ends a header or trailer section
/// in `buf`, looking at line ends from `from` on. A section that is only a
/// blank line (an empty trailer section) also counts.
pub(crate) fn section_end(buf: &[u8], from: usize) -> Option<usize> {
    if from == 0 {
        if buf.starts_with(b"\n") {
            return Some(1);
        }
        if buf.starts_with(b"\r\n") {
            return Some(2);
        }
    }
    let mut i = from;
    while let Some(p) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let lf = i + p;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            (Some(b'\r'), None) | (None, _) => return None,
            _ => i = lf + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_forms() {
        let mut e = Vec::new();
        let RequestStart::Http1(r) = parse_request_line(b"GET /a?b HTTP/1.0", &mut e).unwrap()
        else {
            panic!()
        };
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/a?b"));
        assert_eq!(r.version, HttpVersion::Http10);
        assert!(e.is_empty());
        let RequestStart::Http1(r) = parse_request_line(b"GET /a b HTTP/1.1", &mut e).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.target, "/a b");
        assert_eq!(e, vec![ParseErrorKind::InvalidRequestLine]);
        assert!(matches!(
            parse_request_line(b"PRI * HTTP/2.0", &mut e),
            Ok(RequestStart::Http2Preface)
        ));
        assert!(parse_request_line(b"GET /", &mut e).is_err());
        assert!(parse_request_line(b"G(T / HTTP/1.1", &mut e).is_err());
        assert!(parse_request_line(b"GET / HTTP/3.0", &mut e).is_err());
    }

    #[test]
    fn status_line_forms() {
        let s = parse_status_line(b"HTTP/1.1 404 Not Found").unwrap();
        assert_eq!((s.status, s.reason.as_str()), (404, "Not Found"));
        assert_eq!(parse_status_line(b"HTTP/1.0 200").unwrap().reason, "");
        assert!(parse_status_line(b"HTTP/1.1 20x OK").is_err());
        assert!(parse_status_line(b"HTTP/1.1 2000 OK").is_err());
        assert!(parse_status_line(b"HTTP/1.1").is_err());
        assert!(is_status_line(b"HTTP/1.1 200 OK"));
        assert!(!is_status_line(b"HTTP/1.1 20"));
        assert!(is_request_line(b"POST /mcp HTTP/1.1\r"));
        assert!(!is_request_line(b"POST /mcp HTTP/2"));
    }

    #[test]
    fn headers_fold_case_and_limits() {
        let mut e = Vec::new();
        let mut n = HeaderNotes::default();
        let h = parse_header_lines(
            [
                &b"X-Long: a"[..],
                b"  b",
                b"Content-Type : text/plain",
                b"no colon",
                b"A: 1",
                b"B: 2",
            ]
            .into_iter(),
            3,
            &mut e,
            &mut n,
        );
        assert_eq!(h.0[0].name, "X-Long");
        assert_eq!(h.get("x-long"), Some(&b"a b"[..]));
        assert_eq!(h.get_str("content-type"), Some("text/plain"));
        assert_eq!(h.len(), 3);
        assert_eq!(n.obs_folds, 1);
        assert_eq!(
            e,
            vec![
                ParseErrorKind::WhitespaceInHeaderName,
                ParseErrorKind::InvalidHeaderLine,
                ParseErrorKind::TooManyHeaders
            ]
        );
    }

    fn frame(fields: &[(&str, &str)], req: bool) -> (Framing, Vec<ParseErrorKind>, bool) {
        let mut h = Headers::default();
        for (k, v) in fields {
            h.push(*k, *v);
        }
        let mut e = Vec::new();
        let mut s = false;
        let f = framing(&h, req, HttpVersion::Http11, &mut e, &mut s);
        (f, e, s)
    }

    #[test]
    fn framing_rules() {
        assert_eq!(frame(&[], true).0, Framing::None);
        assert_eq!(frame(&[], false).0, Framing::UntilClose);
        assert_eq!(
            frame(&[("Content-Length", "5")], true).0,
            Framing::Length(5)
        );
        assert_eq!(
            frame(&[("Content-Length", "5, 5"), ("content-length", "5")], true),
            (Framing::Length(5), vec![], false)
        );
        let (f, e, s) = frame(&[("Content-Length", "5"), ("Content-Length", "6")], true);
        assert_eq!(f, Framing::Length(5));
        assert_eq!(e, vec![ParseErrorKind::ConflictingContentLength]);
        assert!(s);
        let (f, e, s) = frame(
            &[
                ("Transfer-Encoding", "gzip, chunked"),
                ("Content-Length", "3"),
            ],
            true,
        );
        assert_eq!(f, Framing::Chunked);
        assert_eq!(e, vec![ParseErrorKind::TransferEncodingWithContentLength]);
        assert!(s);
        assert_eq!(
            frame(&[("Transfer-Encoding", "gzip")], true).0,
            Framing::Unknown
        );
        assert_eq!(
            frame(&[("Transfer-Encoding", "gzip")], false).0,
            Framing::UntilClose
        );
        assert_eq!(
            frame(&[("Content-Length", "99999999999999999999")], true).0,
            Framing::Unknown
        );
        assert_eq!(
            frame(&[("Content-Length", "-1")], false).0,
            Framing::UntilClose
        );
        assert_eq!(
            frame(&[("Content-Length", "18446744073709551615")], false).0,
            Framing::Length(u64::MAX)
        );
    }

    #[test]
    fn section_end_forms() {
        assert_eq!(section_end(b"A\r\n\r\nrest", 0), Some(5));
        assert_eq!(section_end(b"A\n\nrest", 0), Some(3));
        assert_eq!(section_end(b"A\r\nB: c\r\n\r", 0), None);
        assert_eq!(section_end(b"\r\n", 0), Some(2));
        assert_eq!(section_end(b"A\r\nB\r\n", 0), None);
    }
}
