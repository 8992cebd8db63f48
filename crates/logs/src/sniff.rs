//! Telling the formats apart from the first bytes.
//!
//! A decision needs at most the first line (or, for HAR, the first key of
//! the document), so a stream that is still being written (`tail -F`) is
//! classified as soon as its first line is complete.

use std::io::{self, BufRead};

use serde_json::Value;

use crate::input::Prefixed;
use crate::time::parse_epoch;
use crate::LogFormat;

/// Most bytes read ahead to decide: a first line longer than this is
/// classified from its beginning.
pub(crate) const SNIFF_LIMIT: usize = 64 << 10;

pub(crate) enum Sniffed {
    Format(LogFormat),
    NeedMore,
    Unknown(String),
}

pub(crate) enum SniffError {
    Io(io::Error),
    Unknown(String),
}

/// The format of a log from its first bytes (the first KiBs are plenty: a
/// decision needs the first line, or the first key of a HAR), or `None`
/// when it is no known log format.
///
/// ```
/// use shadowmcp_logs::{sniff, LogFormat};
/// assert_eq!(sniff(b"{\n  \"log\": {\n    \"version\": \"1.2\""), Some(LogFormat::Har));
/// assert_eq!(sniff(b"#separator \\x09\n#set_separator\t,\n"), Some(LogFormat::ZeekTsv));
/// assert_eq!(sniff(b"\x7fELF\x02\x01"), None);
/// ```
pub fn sniff(prefix: &[u8]) -> Option<LogFormat> {
    match sniff_step(prefix, true) {
        Sniffed::Format(f) => Some(f),
        _ => None,
    }
}

/// Reads ahead from `src` until the format is known.
pub(crate) fn sniff_stream<R: BufRead>(src: &mut Prefixed<R>) -> Result<LogFormat, SniffError> {
    loop {
        let more = src.read_ahead(SNIFF_LIMIT).map_err(SniffError::Io)?;
        match sniff_step(src.ahead(), !more) {
            Sniffed::Format(f) => return Ok(f),
            Sniffed::Unknown(r) => return Err(SniffError::Unknown(r)),
            Sniffed::NeedMore if more => {}
            Sniffed::NeedMore => return Err(SniffError::Unknown("cannot tell the format".into())),
        }
    }
}

fn strip_start(mut b: &[u8]) -> &[u8] {
    b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// `complete`: no more bytes will come (end of input, or the limit).
pub(crate) fn sniff_step(prefix: &[u8], complete: bool) -> Sniffed {
    let b = strip_start(prefix);
    let Some(&first) = b.first() else {
        return if complete {
            Sniffed::Unknown("empty input".into())
        } else {
            Sniffed::NeedMore
        };
    };
    if let Some(r) = binary_kind(b) {
        return Sniffed::Unknown(r.into());
    }
    let line_end = b.iter().position(|&c| c == b'\n');
    let line = b.get(..line_end.unwrap_or(b.len())).unwrap_or_default();
    let line_known = line_end.is_some() || complete;
    match first {
        b'#' => {
            let zeek = [&b"#separator"[..], b"#fields", b"#path", b"#set_separator"];
            if zeek.iter().any(|z| line.starts_with(z)) {
                Sniffed::Format(LogFormat::ZeekTsv)
            } else if !line_known && zeek.iter().any(|z| z.starts_with(line)) {
                Sniffed::NeedMore
            } else {
                Sniffed::Unknown("starts with a '#' line that is not a Zeek log header".into())
            }
        }
        b'{' => sniff_json(b, line, line_known, complete),
        b'[' => Sniffed::Unknown("a JSON array (expected a HAR document or NDJSON lines)".into()),
        _ if !line_known => Sniffed::NeedMore,
        _ => sniff_text(line),
    }
}

fn binary_kind(b: &[u8]) -> Option<&'static str> {
    let magics: [(&[u8], &str); 6] = [
        (
            &[0x1f, 0x8b],
            "gzip-compressed data (decompress it first, e.g. zcat FILE | shadowmcp scan -)",
        ),
        (
            &[0x28, 0xb5, 0x2f, 0xfd],
            "zstd-compressed data (decompress it first)",
        ),
        (&[0xd4, 0xc3, 0xb2, 0xa1], "a pcap capture, not a log"),
        (&[0xa1, 0xb2, 0xc3, 0xd4], "a pcap capture, not a log"),
        (&[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng capture, not a log"),
        (b"PK\x03\x04", "a zip archive"),
    ];
    for (m, why) in magics {
        if b.starts_with(m) {
            return Some(why);
        }
    }
    let head = b.get(..b.len().min(512)).unwrap_or_default();
    if head
        .iter()
        .any(|&c| c == 0 || (c < 0x20 && !c.is_ascii_whitespace()))
    {
        return Some("binary data");
    }
    None
}

/// The first key of a JSON object at the start of `b`, if complete.
fn first_key(b: &[u8]) -> Option<Result<&[u8], ()>> {
    let rest = strip_start(b.get(1..)?);
    let &q = rest.first()?;
    if q != b'"' {
        return Some(Err(()));
    }
    let body = rest.get(1..)?;
    let mut escape = false;
    for (i, &c) in body.iter().enumerate() {
        if escape {
            escape = false;
        } else if c == b'\\' {
            escape = true;
        } else if c == b'"' {
            return Some(Ok(body.get(..i).unwrap_or_default()));
        }
    }
    None
}

fn sniff_json(b: &[u8], line: &[u8], line_known: bool, complete: bool) -> Sniffed {
    match first_key(b) {
        Some(Ok(b"log")) => return Sniffed::Format(LogFormat::Har),
        Some(Ok(_)) | Some(Err(())) => {}
        None if !complete => return Sniffed::NeedMore,
        None => {}
    }
    if line_known {
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) {
            return if o.contains_key("log") {
                Sniffed::Format(LogFormat::Har)
            } else if o.contains_key("uid") || o.contains_key("id.orig_h") {
                let http = ["method", "host", "uri", "status_code"];
                if http.iter().any(|k| o.contains_key(*k)) {
                    Sniffed::Format(LogFormat::ZeekJson)
                } else {
                    Sniffed::Unknown(
                        "a Zeek JSON log that is not http.log (no method, host, uri or status_code)"
                            .into(),
                    )
                }
            } else if o.contains_key("url") || o.contains_key("method") {
                Sniffed::Format(LogFormat::Ndjson)
            } else {
                Sniffed::Unknown(
                    "a JSON object without url/method (NDJSON), uid (Zeek) or log (HAR)".into(),
                )
            };
        }
    }
    if !complete && !line_known {
        return Sniffed::NeedMore;
    }
    // The first line is not a whole JSON object: a malformed first record
    // (or one longer than the look-ahead) is classified by the keys it
    // names; a pretty-printed document can only be a HAR, which starts
    // with `log`.
    let has = |k: &[u8]| line.windows(k.len()).any(|w| w == k);
    if has(b"\"id.orig_h\"") || has(b"\"uid\"") {
        Sniffed::Format(LogFormat::ZeekJson)
    } else if has(b"\"url\"") || has(b"\"method\"") {
        Sniffed::Format(LogFormat::Ndjson)
    } else {
        Sniffed::Unknown("a JSON document that is not a HAR (no log key first)".into())
    }
}

fn sniff_text(line: &[u8]) -> Sniffed {
    let Ok(text) = std::str::from_utf8(line) else {
        return Sniffed::Unknown("first line is not UTF-8 text".into());
    };
    let t: Vec<&str> = text.split_ascii_whitespace().collect();
    let native = t.len() >= 10
        && t.first()
            .is_some_and(|s| s.contains('.') && parse_epoch(s).is_some())
        && t.get(1).is_some_and(|s| s.parse::<i64>().is_ok())
        && t.get(3).is_some_and(|s| {
            s.rsplit_once('/')
                .is_some_and(|(_, st)| st.len() == 3 && st.bytes().all(|c| c.is_ascii_digit()))
        });
    if native {
        return Sniffed::Format(LogFormat::SquidNative);
    }
    let combined =
        t.len() >= 7 && t.get(3).is_some_and(|s| s.starts_with('[')) && text.contains("] \"");
    if combined {
        return Sniffed::Format(LogFormat::SquidCombined);
    }
    let shown: String = text.chars().take(60).collect();
    Sniffed::Unknown(format!(
        "first line is neither a Squid native nor a combined/common log line: '{shown}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_input_waits_for_the_first_line() {
        assert!(matches!(
            sniff_step(b"1795935934.147 12 10.0.0.1", false),
            Sniffed::NeedMore
        ));
        assert!(matches!(sniff_step(b"{\"lo", false), Sniffed::NeedMore));
        assert!(matches!(sniff_step(b"#sep", false), Sniffed::NeedMore));
        assert!(matches!(sniff_step(b"  \n", false), Sniffed::NeedMore));
        assert!(matches!(
            sniff_step(b"{ \"log\"", false),
            Sniffed::Format(LogFormat::Har)
        ));
    }
}
