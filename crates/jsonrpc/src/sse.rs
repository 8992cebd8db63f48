//! Server-sent event streams (`text/event-stream`), as a whole body or one
//! event at a time.
//!
//! MCP servers send JSON-RPC messages as SSE `message` events; the 2024-11-05
//! HTTP+SSE transport opens with an `endpoint` event whose data is the POST
//! URL with a session id (mcp-facts.md §b.1).

use crate::{analyze_json_into, parse, Analysis, Limits, Signal};

/// Whether a (trimmed) body starts like an SSE stream. JSON never starts with
/// these.
pub(crate) fn looks_like_sse(text: &[u8]) -> bool {
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"]
        .iter()
        .any(|p| text.starts_with(p))
}

/// Analyses one SSE event, as a parser such as shadowmcp-http1 delivers it:
/// `event` is the `event:` field (`None` = `message`), `data` its `data:`
/// lines joined by `\n`.
///
/// ```
/// use shadowmcp_jsonrpc::{analyze_sse_event, Evidence, Limits, Signal};
/// let a = analyze_sse_event(Some("endpoint"), b"/messages?sessionId=4b1e", &Limits::default());
/// assert_eq!((a.evidence, a.signals.as_slice()), (Evidence::Strong, &[Signal::SseEndpoint][..]));
/// ```
pub fn analyze_sse_event(event: Option<&str>, data: &[u8], limits: &Limits) -> Analysis {
    let mut a = Analysis::new(limits);
    a.sse = true;
    let data = match data.get(..limits.max_bytes) {
        Some(head) if head.len() < data.len() => {
            a.truncated = true;
            head
        }
        _ => data,
    };
    event_into(event.unwrap_or("message").as_bytes(), data, limits, &mut a);
    a
}

fn event_into(event: &[u8], data: &[u8], limits: &Limits, a: &mut Analysis) {
    if event == b"endpoint" {
        let has_session = [&b"sessionId="[..], b"session_id="]
            .iter()
            .any(|needle| data.windows(needle.len()).any(|w| w == *needle));
        if has_session {
            a.note(Signal::SseEndpoint);
        }
        return;
    }
    let text = parse::trim_input(data);
    if !text.is_empty() {
        let mut sub = Analysis::new(limits);
        analyze_json_into(text, limits, &mut sub);
        a.merge(sub);
    }
}

/// Splits a stream into events (lines end in LF, CRLF or CR; a blank line
/// dispatches) and analyses each. A last event without its blank line is
/// analysed too: the body may have been cut. At most `max_messages` events.
pub(crate) fn analyze_stream(text: &[u8], limits: &Limits, a: &mut Analysis) {
    a.sse = true;
    let mut event: &[u8] = b"";
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    let mut events = 0usize;
    let mut dispatch = |event: &[u8], data: &mut Vec<u8>, has_data: &mut bool, a: &mut Analysis| {
        if *has_data {
            if events < limits.max_messages {
                event_into(
                    if event.is_empty() { b"message" } else { event },
                    data,
                    limits,
                    a,
                );
            } else {
                a.skipped = a.skipped.saturating_add(1);
            }
            events += 1;
        }
        data.clear();
        *has_data = false;
    };
    for line in lines(text) {
        if line.is_empty() {
            dispatch(event, &mut data, &mut has_data, a);
            event = b"";
            continue;
        }
        let (field, value) = match line.iter().position(|&c| c == b':') {
            Some(0) => continue, // comment / keep-alive
            Some(i) => {
                let value = line.get(i + 1..).unwrap_or_default();
                (
                    line.get(..i).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if has_data {
                    data.push(b'\n');
                }
                data.extend_from_slice(value);
                has_data = true;
            }
            b"event" => event = value,
            _ => {}
        }
    }
    dispatch(event, &mut data, &mut has_data, a);
}

/// Lines split on LF, CRLF or CR.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match rest.iter().position(|&c| c == b'\n' || c == b'\r') {
            Some(i) => {
                let line = rest.get(..i).unwrap_or_default();
                let skip = if rest.get(i) == Some(&b'\r') && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = rest.get(i + skip..).unwrap_or_default();
                Some(line)
            }
            None => {
                done = true;
                Some(rest)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_every_terminator() {
        let v: Vec<&[u8]> = lines(b"a\r\nb\rc\nd").collect();
        assert_eq!(v, [&b"a"[..], b"b", b"c", b"d"]);
        let v: Vec<&[u8]> = lines(b"a\n\n").collect();
        assert_eq!(v, [&b"a"[..], b"", b""]);
    }

    #[test]
    fn detection() {
        assert!(looks_like_sse(b"data: {}"));
        assert!(looks_like_sse(b": keep-alive"));
        assert!(!looks_like_sse(b"{\"data:\":1}"));
    }
}
