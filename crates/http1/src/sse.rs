//! Incremental `text/event-stream` parser (WHATWG HTML, "Server-sent events",
//! §9.2.6 "Interpreting an event stream"), with bounded memory.

use shadowmcp_exchange::{Exchange, Flags, Record, SseEvent, SseUpdate, Timestamp};

const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Splits a decoded event stream into events. Feed bytes with
/// [`SseParser::feed`], take finished events with [`SseParser::take_events`].
/// Usable on its own, e.g. for event-stream bodies read from proxy logs.
///
/// ```
/// use shadowmcp_http1::SseParser;
/// let mut p = SseParser::new(1 << 20);
/// p.feed(b"event: message\r\ndata: {\"jsonrpc\":");
/// assert!(p.take_events().is_empty());
/// p.feed(b"\"2.0\"}\r\n\r\n");
/// let events = p.take_events();
/// assert_eq!(events[0].event.as_deref(), Some("message"));
/// assert_eq!(events[0].data, r#"{"jsonrpc":"2.0"}"#);
/// ```
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes seen at the stream start while deciding whether it is a BOM.
    bom: Vec<u8>,
    bom_done: bool,
    line: Vec<u8>,
    /// The last line ended with CR: an LF right after it belongs to it.
    after_cr: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    /// The current event lost bytes to the size cap.
    event_truncated: bool,
    events: Vec<SseEvent>,
    pending_bytes: usize,
    truncated_events: u64,
    dispatched: u64,
    /// Events not taken past this many bytes are dropped.
    max_pending: usize,
    overflowed: bool,
}

impl SseParser {
    /// A parser whose events (and lines) are capped at `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            max_event_bytes: max_event_bytes.max(1),
            bom: Vec::new(),
            bom_done: false,
            line: Vec::new(),
            after_cr: false,
            data: Vec::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            event_truncated: false,
            events: Vec::new(),
            pending_bytes: 0,
            truncated_events: 0,
            dispatched: 0,
            max_pending: max_event_bytes.max(1).saturating_mul(4),
            overflowed: false,
        }
    }

    /// Feeds decoded stream bytes.
    pub fn feed(&mut self, mut input: &[u8]) {
        if !self.bom_done {
            while let Some((&b, rest)) = input.split_first() {
                self.bom.push(b);
                input = rest;
                let n = self.bom.len();
                if BOM.get(..n) != Some(&self.bom[..]) || n == BOM.len() {
                    self.bom_done = true;
                    break;
                }
            }
            if !self.bom_done {
                return;
            }
            let held = std::mem::take(&mut self.bom);
            if held != BOM {
                self.feed_lines(&held);
            }
        }
        self.feed_lines(input);
    }

    fn feed_lines(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match input.iter().position(|&b| b == b'\r' || b == b'\n') {
                None => {
                    self.push_line_bytes(input);
                    return;
                }
                Some(i) => {
                    let (text, rest) = input.split_at(i);
                    let Some((&eol, rest)) = rest.split_first() else {
                        return;
                    };
                    input = rest;
                    if i == 0 && eol == b'\n' && self.after_cr {
                        // The LF of a CRLF whose CR ended the previous line.
                        self.after_cr = false;
                        continue;
                    }
                    self.push_line_bytes(text);
                    self.after_cr = eol == b'\r';
                    self.end_line();
                }
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.after_cr = false;
        let room = self.max_event_bytes.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.event_truncated = true;
        }
        self.line
            .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch();
        } else if line.first() != Some(&b':') {
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(p) => {
                    let v = line.get(p + 1..).unwrap_or_default();
                    (
                        line.get(..p).unwrap_or_default(),
                        v.strip_prefix(b" ").unwrap_or(v),
                    )
                }
                None => (&line[..], &b""[..]),
            };
            match name {
                b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
                b"data" => {
                    let room = self.max_event_bytes.saturating_sub(self.data.len());
                    if value.len() + 1 > room {
                        self.event_truncated = true;
                    }
                    let mut v = value.to_vec();
                    v.push(b'\n');
                    v.truncate(room);
                    self.data.extend_from_slice(&v);
                    self.has_data = true;
                }
                b"id" if !value.contains(&0) => {
                    self.id = Some(String::from_utf8_lossy(value).into_owned())
                }
                b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                    // Saturate rather than overflow on absurd values.
                    self.retry = Some(value.iter().fold(0u64, |acc, d| {
                        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                    }));
                }
                _ => {}
            }
        }
        // Reuse the allocation for the next line.
        self.line = line;
        self.line.clear();
    }

    fn dispatch(&mut self) {
        let has_data = std::mem::take(&mut self.has_data);
        let mut data = std::mem::take(&mut self.data);
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        let truncated = std::mem::take(&mut self.event_truncated);
        if !has_data {
            return;
        }
        if !truncated && data.last() == Some(&b'\n') {
            data.pop();
        }
        if truncated {
            self.truncated_events += 1;
        }
        let event = SseEvent {
            event: event.filter(|e| !e.is_empty()),
            data: String::from_utf8_lossy(&data).into_owned(),
            id,
            retry,
        };
        let size = event.data.len() + event.event.as_ref().map_or(0, String::len);
        if self.pending_bytes.saturating_add(size) > self.max_pending {
            // Events arrive faster than they are taken (a compressed stream
            // that expands without bound): drop rather than grow.
            self.overflowed = true;
            self.truncated_events += 1;
            return;
        }
        self.pending_bytes += size;
        self.dispatched += 1;
        self.events.push(event);
    }

    /// Events completed since the last call.
    pub fn take_events(&mut self) -> Vec<SseEvent> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.events)
    }

    /// Bytes held in events not yet taken.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes buffered: the partial line and event, and events not yet taken.
    pub fn buffered_bytes(&self) -> usize {
        self.bom.len() + self.line.len() + self.data.len() + self.pending_bytes
    }

    /// True once events were dropped because they were not taken in time
    /// (more than four times `max_event_bytes` pending).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Events cut by the size cap or dropped so far.
    pub fn truncated_events(&self) -> u64 {
        self.truncated_events
    }

    /// Events completed so far.
    pub fn dispatched(&self) -> u64 {
        self.dispatched
    }

    /// Bytes went missing: drop the partial line and event.
    pub fn reset_partial(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.id = None;
        self.retry = None;
        self.event_truncated = false;
    }

    /// End of the stream; per the spec a partial event is discarded.
    /// Returns true when something was discarded.
    pub fn finish(&mut self) -> bool {
        let partial = !self.line.is_empty() || self.has_data;
        self.reset_partial();
        partial
    }
}

/// An event-stream response handed out as it arrives, the same way by the
/// HTTP/1 and HTTP/2 parsers: first its exchange (flagged `streaming`,
/// with the events parsed so far), then each new batch of events as an
/// [`SseUpdate`], and last an update with `end` ([`EventStreamOut::finish`]).
#[derive(Debug)]
pub struct EventStreamOut {
    exchange_id: u64,
    /// The exchange, until it is handed out.
    unsent: Option<Box<Exchange>>,
    /// Problems met since the exchange was built.
    pub flags: Flags,
    truncated_seen: u64,
}

/// What one [`EventStreamOut::flush`] handed out, for the parser's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub events: u64,
    /// Events the parser cut since the last flush.
    pub truncated_events: u64,
    /// The exchange itself went out.
    pub exchange: bool,
}

impl EventStreamOut {
    pub fn new(exchange: Box<Exchange>) -> EventStreamOut {
        EventStreamOut {
            exchange_id: exchange.id,
            unsent: Some(exchange),
            flags: Flags::default(),
            truncated_seen: 0,
        }
    }

    pub fn exchange_id(&self) -> u64 {
        self.exchange_id
    }

    /// The exchange while it has not been handed out.
    pub fn unsent(&self) -> Option<&Exchange> {
        self.unsent.as_deref()
    }

    /// Hands out the exchange, or the events `parser` finished since the
    /// last call.
    pub fn flush(
        &mut self,
        parser: Option<&mut SseParser>,
        flow_id: u64,
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) -> Flushed {
        let mut done = Flushed::default();
        let mut events = Vec::new();
        if let Some(p) = parser {
            events = p.take_events();
            let truncated = p.truncated_events();
            if truncated > self.truncated_seen {
                done.truncated_events = truncated - self.truncated_seen;
                self.truncated_seen = truncated;
                self.flags.truncated = true;
            }
        }
        done.events = events.len() as u64;
        if let Some(mut ex) = self.unsent.take() {
            if let Some(r) = ex.response.as_mut() {
                r.sse_events = events;
            }
            ex.flags.merge(self.flags);
            done.exchange = true;
            out.push(Record::Exchange(ex));
        } else if !events.is_empty() {
            out.push(Record::SseUpdate(SseUpdate {
                exchange_id: self.exchange_id,
                flow_id: Some(flow_id),
                ts,
                events,
                end: false,
                flags: self.flags,
            }));
        }
        done
    }

    /// The closing update, with the stream's flags and `flags`. Flush
    /// first: events still in the parser are not handed out here.
    pub fn finish(self, flags: Flags, flow_id: u64, ts: Timestamp, out: &mut Vec<Record>) {
        let mut all = self.flags;
        all.merge(flags);
        out.push(Record::SseUpdate(SseUpdate {
            exchange_id: self.exchange_id,
            flow_id: Some(flow_id),
            ts,
            events: Vec::new(),
            end: true,
            flags: all,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], step: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 20);
        let mut all = Vec::new();
        for c in input.chunks(step.max(1)) {
            p.feed(c);
            all.extend(p.take_events());
        }
        p.finish();
        all
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(Into::into),
            data: data.into(),
            id: id.map(Into::into),
            retry: None,
        }
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let s = b"\xef\xbb\xbf: comment\nevent: message\ndata: {\"a\":1}\nid: 7\n\ndata:x\ndata: y\r\n\r\nretry: 3000\ndata\n\n";
        for step in [1, 2, 5, 1000] {
            let got = parse(s, step);
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(got[0], ev(Some("message"), "{\"a\":1}", Some("7")));
            assert_eq!(got[1], ev(None, "x\ny", None));
            assert_eq!(got[2].data, "");
            assert_eq!(got[2].retry, Some(3000));
        }
    }

    #[test]
    fn cr_only_line_endings_and_crlf_split() {
        let s = b"data: a\rdata: b\r\rdata: c\r\n\r\n";
        for step in [1, 3, 100] {
            let got = parse(s, step);
            assert_eq!(got, vec![ev(None, "a\nb", None), ev(None, "c", None)]);
        }
    }

    #[test]
    fn event_without_data_not_dispatched_and_partial_discarded() {
        let mut p = SseParser::new(100);
        p.feed(b"event: x\n\ndata: partial");
        assert!(p.take_events().is_empty());
        assert!(p.finish());
    }

    #[test]
    fn oversized_event_is_truncated_and_bounded() {
        let mut p = SseParser::new(16);
        p.feed(b"data: ");
        for _ in 0..1000 {
            p.feed(&[b'z'; 1000]);
        }
        p.feed(b"\n\ndata: ok\n\n");
        let got = p.take_events();
        assert_eq!(got.len(), 2);
        assert!(got[0].data.len() <= 16);
        assert_eq!(got[1].data, "ok");
        assert_eq!(p.truncated_events(), 1);
    }

    #[test]
    fn bom_prefix_that_is_not_a_bom() {
        let got = parse(b"\xefdata: a\n\n", 1);
        assert!(got.is_empty(), "the field name is not 'data'");
        let got = parse(b"data: \xef\n\n", 1);
        assert_eq!(got[0].data, "\u{fffd}");
    }
}
