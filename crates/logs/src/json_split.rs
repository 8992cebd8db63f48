//! Incremental splitter for a HAR document: finds `log.entries` and hands
//! out the bytes of each entry as soon as its closing bracket arrives,
//! without ever holding more than one entry.
//!
//! It tracks only what is needed to find value boundaries: string and
//! escape state, bracket depth, and object keys on the path to `entries`.
//! It does not validate JSON outside the entries (each entry is parsed by
//! serde_json afterwards, which does).

/// Deepest nesting followed outside the entries (inside an entry only a
/// counter is kept).
const MAX_DEPTH: usize = 256;

/// Longest key kept while looking for `log` / `entries`.
const MAX_KEY: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The top-level object.
    Root,
    /// The object under `log`.
    Log,
    /// The array under `log.entries`.
    Entries,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Log,
    Entries,
    Other,
}

#[derive(Debug)]
struct Frame {
    role: Role,
    is_object: bool,
    /// Object: a key comes next (after `{` or `,`).
    expect_key: bool,
    /// Object: the key of the member being read.
    key: Key,
}

/// What the splitter hands out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// One complete element of `log.entries` (1-based index, line where it
    /// started).
    Entry {
        index: u64,
        line: u64,
        bytes: Vec<u8>,
    },
    /// An element larger than the cap: skipped (its size in bytes).
    Oversize { index: u64, line: u64, len: u64 },
}

#[derive(Debug)]
pub(crate) struct HarSplitter {
    max_entry: usize,
    stack: Vec<Frame>,
    in_string: bool,
    escape: bool,
    /// Reading an object key outside the entries.
    key_buf: Option<Vec<u8>>,
    /// The top-level value has closed.
    done: bool,
    seen_entries: bool,
    // The entry being captured.
    capturing: bool,
    cap_depth: u32,
    cap: Vec<u8>,
    cap_len: u64,
    cap_line: u64,
    /// The element is a container that closed; only `,`/`]` may follow.
    cap_closed: bool,
    index: u64,
    line: u64,
    failed: Option<String>,
}

impl HarSplitter {
    /// `max_entry`: largest entry kept, in bytes.
    pub(crate) fn new(max_entry: usize) -> HarSplitter {
        HarSplitter {
            max_entry,
            stack: Vec::new(),
            in_string: false,
            escape: false,
            key_buf: None,
            done: false,
            seen_entries: false,
            capturing: false,
            cap_depth: 0,
            cap: Vec::new(),
            cap_len: 0,
            cap_line: 0,
            cap_closed: false,
            index: 0,
            line: 1,
            failed: None,
        }
    }

    /// Entries started so far.
    pub(crate) fn entries_started(&self) -> u64 {
        self.index
    }

    /// The document is complete (its top-level object closed).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// An `entries` array was found.
    pub(crate) fn seen_entries(&self) -> bool {
        self.seen_entries
    }

    /// Feeds bytes; complete entries go to `out`. An error means the
    /// document's structure is broken: nothing further can be split.
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Piece)) -> Result<(), String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            if self.capturing && self.in_string && !self.escape {
                // Fast path: the plain bytes of a string inside an entry
                // (most of a HAR) are copied in one piece.
                let rest = data.get(i..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c == b'\n')
                    .unwrap_or(rest.len());
                if run > 0 {
                    self.capture_plain(rest.get(..run).unwrap_or_default());
                    i += run;
                    continue;
                }
            }
            if let Err(e) = self.byte(b, out) {
                self.failed = Some(e.clone());
                return Err(e);
            }
            if b == b'\n' {
                self.line = self.line.saturating_add(1);
            }
            i += 1;
        }
        Ok(())
    }

    /// Bytes inside a string of the entry being captured.
    fn capture_plain(&mut self, run: &[u8]) {
        self.cap_len = self.cap_len.saturating_add(run.len() as u64);
        let room = self.max_entry.saturating_sub(self.cap.len());
        self.cap
            .extend_from_slice(run.get(..run.len().min(room)).unwrap_or_default());
    }

    /// At end of input: why the document is incomplete, if it is.
    pub(crate) fn unfinished(&self) -> Option<String> {
        if self.done || self.failed.is_some() {
            return None;
        }
        if self.stack.is_empty() {
            return None;
        }
        Some(if self.capturing && !self.cap_closed {
            format!(
                "input ends inside entry {} (started at line {})",
                self.index, self.cap_line
            )
        } else {
            format!(
                "input ends before the HAR document closes (line {})",
                self.line
            )
        })
    }

    fn byte(&mut self, b: u8, out: &mut dyn FnMut(Piece)) -> Result<(), String> {
        if self.capturing {
            return self.capture_byte(b, out);
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if let Some(k) = self.key_buf.take() {
                    let key = match k.as_slice() {
                        b"log" => Key::Log,
                        b"entries" => Key::Entries,
                        _ => Key::Other,
                    };
                    if let Some(top) = self.stack.last_mut() {
                        top.key = key;
                    }
                }
                return Ok(());
            }
            if let Some(k) = &mut self.key_buf {
                if k.len() <= MAX_KEY {
                    k.push(b);
                }
            }
            return Ok(());
        }
        if b.is_ascii_whitespace() {
            return Ok(());
        }
        if self.done {
            return Err("data after the end of the HAR document".into());
        }
        let Some(top) = self.stack.last_mut() else {
            return if b == b'{' {
                self.stack.push(Frame {
                    role: Role::Root,
                    is_object: true,
                    expect_key: true,
                    key: Key::Other,
                });
                Ok(())
            } else {
                Err("not a HAR document: the top-level value is not an object".into())
            };
        };
        if top.role == Role::Entries && b != b']' && b != b',' {
            self.start_capture();
            return self.capture_byte(b, out);
        }
        match b {
            b'"' => {
                self.in_string = true;
                if top.is_object && top.expect_key {
                    self.key_buf = Some(Vec::new());
                }
            }
            b':' => top.expect_key = false,
            b',' if top.is_object => {
                top.expect_key = true;
                top.key = Key::Other;
            }
            b'{' | b'[' => {
                let role = match (top.role, top.key, b) {
                    (Role::Root, Key::Log, b'{') => Role::Log,
                    (Role::Log, Key::Entries, b'[') => Role::Entries,
                    _ => Role::Other,
                };
                if self.stack.len() >= MAX_DEPTH {
                    return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
                }
                if role == Role::Entries {
                    self.seen_entries = true;
                }
                self.stack.push(Frame {
                    role,
                    is_object: b == b'{',
                    expect_key: b == b'{',
                    key: Key::Other,
                });
            }
            b'}' | b']' => {
                let expected_object = b == b'}';
                match self.stack.pop() {
                    Some(f) if f.is_object == expected_object => {}
                    _ => return Err(format!("unbalanced '{}' at line {}", b as char, self.line)),
                }
                if self.stack.is_empty() {
                    self.done = true;
                }
            }
            // Numbers, literals: nothing to track.
            _ => {}
        }
        Ok(())
    }

    fn start_capture(&mut self) {
        self.capturing = true;
        self.cap_depth = 0;
        self.cap.clear();
        self.cap_len = 0;
        self.cap_closed = false;
        self.index = self.index.saturating_add(1);
        self.cap_line = self.line;
    }

    fn capture_byte(&mut self, b: u8, out: &mut dyn FnMut(Piece)) -> Result<(), String> {
        if !self.in_string && self.cap_depth == 0 && (b == b',' || b == b']') {
            // A scalar element (or stray bytes after a closed one) ends.
            self.finish_capture(out);
            return self.byte(b, out);
        }
        if self.cap_closed && !b.is_ascii_whitespace() {
            // Garbage between elements: it becomes part of a (malformed)
            // element of its own.
            self.finish_capture(out);
            self.start_capture();
        }
        self.cap_len = self.cap_len.saturating_add(1);
        if self.cap.len() < self.max_entry {
            self.cap.push(b);
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return Ok(());
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.cap_depth = self.cap_depth.saturating_add(1),
            b'}' | b']' => {
                self.cap_depth = self.cap_depth.saturating_sub(1);
                if self.cap_depth == 0 {
                    // Hand the entry out now, not at the next comma: a
                    // streamed HAR may pause here for a long time.
                    self.finish_capture(out);
                    self.capturing = true;
                    self.cap_closed = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_capture(&mut self, out: &mut dyn FnMut(Piece)) {
        self.capturing = false;
        if self.cap_closed || self.cap_len == 0 {
            // Already handed out, or nothing there.
            self.cap_closed = false;
            return;
        }
        if self.cap_len > self.max_entry as u64 {
            out(Piece::Oversize {
                index: self.index,
                line: self.cap_line,
                len: self.cap_len,
            });
        } else {
            out(Piece::Entry {
                index: self.index,
                line: self.cap_line,
                bytes: std::mem::take(&mut self.cap),
            });
        }
        self.cap = Vec::new();
        self.cap_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(
        doc: &[u8],
        step: usize,
        max: usize,
    ) -> (Vec<Piece>, Result<(), String>, Option<String>) {
        let mut s = HarSplitter::new(max);
        let mut out = Vec::new();
        let mut res = Ok(());
        for c in doc.chunks(step.max(1)) {
            res = s.feed(c, &mut |p| out.push(p));
            if res.is_err() {
                break;
            }
        }
        (out, res, s.unfinished())
    }

    fn entries(p: &[Piece]) -> Vec<String> {
        p.iter()
            .map(|p| match p {
                Piece::Entry { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
                Piece::Oversize { len, .. } => format!("oversize {len}"),
            })
            .collect()
    }

    const DOC: &str = r#"{"log": {"version": "1.2", "creator": {"name": "x", "entries": [1]},
  "pages": [{"entries": "no"}],
  "entries": [
    {"a": "}\"]", "b": [1, {"c": 2}]},
    {"d": {}}
  ], "comment": "entries"}, "entries": [{"not": "these"}]}"#;

    #[test]
    fn finds_only_log_entries_in_any_split() {
        for step in [1, 2, 3, 7, 1000] {
            let (pieces, res, unfinished) = split(DOC.as_bytes(), step, 1 << 20);
            assert_eq!(res, Ok(()));
            assert_eq!(unfinished, None);
            assert_eq!(
                entries(&pieces),
                vec![r#"{"a": "}\"]", "b": [1, {"c": 2}]}"#, r#"{"d": {}}"#]
            );
        }
        let (pieces, _, _) = split(DOC.as_bytes(), 5, 1 << 20);
        assert!(matches!(
            pieces[0],
            Piece::Entry {
                index: 1,
                line: 4,
                ..
            }
        ));
        assert!(matches!(
            pieces[1],
            Piece::Entry {
                index: 2,
                line: 5,
                ..
            }
        ));
    }

    #[test]
    fn cut_document_yields_complete_entries_and_says_where() {
        let cut = &DOC[..DOC.find(r#"{"d""#).unwrap() + 4];
        let (pieces, res, unfinished) = split(cut.as_bytes(), 3, 1 << 20);
        assert_eq!(res, Ok(()));
        assert_eq!(pieces.len(), 1);
        assert_eq!(
            unfinished.as_deref(),
            Some("input ends inside entry 2 (started at line 5)")
        );
    }

    #[test]
    fn scalars_oversize_and_garbage() {
        let doc = br#"{"log":{"entries":[ 12 , {"x":"0123456789"}, "s" {"y":1}]}}"#;
        let (pieces, res, _) = split(doc, 1, 12);
        assert_eq!(res, Ok(()));
        assert_eq!(
            entries(&pieces),
            vec!["12 ", "oversize 18", "\"s\" {\"y\":1}"]
        );
    }

    #[test]
    fn structure_errors() {
        assert!(split(b"[1,2]", 1, 10).1.is_err());
        assert!(split(b"{\"log\":{]}", 1, 10).1.is_err());
        assert!(split(b"{} {}", 1, 10).1.is_err());
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(split(format!("{{\"a\":{deep}").as_bytes(), 1, 10)
            .1
            .is_err());
    }
}
