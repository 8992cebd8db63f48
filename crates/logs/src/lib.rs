//! Proxy logs into [`Record`]s: one job, turning the logs a secure web
//! gateway or proxy already writes into the same
//! `Exchange`s the capture path produces,
//! so detection, policy and sinks work on them unchanged.
//!
//! Formats ([`LogFormat`]), detected from the content ([`sniff`]) or forced:
//!
//! - **HAR 1.2** (mitmproxy, browsers, Charles, Fiddler): full requests and
//!   responses with bodies; event-stream responses split into events.
//! - **NDJSON**, shadowmcp's own schema (one JSON object a line, see
//!   [`LogFormat::Ndjson`] and the crate README): full exchanges.
//! - **Squid access.log**, native and combined formats: no bodies, so only
//!   host, path and header rules can match.
//! - **Zeek http.log**, TSV (with its `#fields` header) and JSON: no bodies.
//!
//! Input is read as a stream: every record is handed to the sink as soon as
//! its line (or HAR entry) is complete, memory stays bounded by
//! [`LogConfig`], and `tail -F proxy.log | shadowmcp scan -` works. A
//! malformed line or entry is reported (`file:line: reason`), counted and
//! skipped; a HAR cut short yields every entry before the cut.
//!
//! ```
//! use shadowmcp_exchange::Record;
//! use shadowmcp_http1::ExchangeIds;
//! use shadowmcp_logs::{process_log, LogConfig, LogFormat};
//!
//! let log = "1795935934.147    120 10.1.2.3 TCP_MISS/200 1530 POST https://mcp.example.com/mcp alice HIER_DIRECT/203.0.113.9 text/event-stream\n";
//! let mut hosts = Vec::new();
//! let report = process_log(
//!     "access.log",
//!     log.as_bytes(),
//!     None, // sniff the format
//!     &LogConfig::default(),
//!     &ExchangeIds::new(),
//!     &mut |record| {
//!         if let Record::Exchange(ex) = record {
//!             hosts.push((ex.host().map(String::from), ex.user.clone()));
//!         }
//!     },
//!     &mut |warning| eprintln!("{warning}"),
//! )
//! .unwrap();
//! assert_eq!(report.format, LogFormat::SquidNative);
//! assert_eq!(hosts, vec![(Some("mcp.example.com".to_string()), Some("alice".to_string()))]);
//! ```

#![forbid(unsafe_code)]

mod common;
mod har;
mod input;
mod json_split;
mod ndjson;
mod sniff;
mod squid;
mod time;
mod zeek;

use std::fmt;
use std::io::{self, BufRead};
use std::str::FromStr;

use shadowmcp_exchange::{Exchange, Origin, Record};
use shadowmcp_http1::ExchangeIds;

pub use sniff::sniff;

use input::{read_line, Line, Prefixed};

/// The log formats this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// HTTP Archive 1.2 (one JSON document, entries read incrementally).
    Har,
    /// shadowmcp's NDJSON schema, version 1: one JSON object a line, one
    /// exchange each (the crate README has the full table).
    ///
    /// ```json
    /// {"version": 1, "ts": "2026-11-29T07:25:34.147Z", "client_ip": "10.1.2.3",
    ///  "client_port": 50123, "server_ip": "203.0.113.9", "server_port": 443, "user": "alice",
    ///  "method": "POST", "url": "https://mcp.example.com/mcp?x=1", "http_version": "HTTP/1.1",
    ///  "request_headers": [["Content-Type", "application/json"]], "request_body": "{}",
    ///  "request_body_encoding": "utf8", "status": 200, "reason": "OK",
    ///  "response_headers": {"Content-Type": "application/json"},
    ///  "response_body": "e30=", "response_body_encoding": "base64", "truncated": false}
    /// ```
    ///
    /// Only `method` and `url` are required. `ts`: RFC 3339 or epoch
    /// seconds. Headers: `[[name, value], ...]` or `{name: value}`. Bodies:
    /// `utf8` (default) or `base64`; still content-encoded bodies are
    /// decoded (`*_body_content_encoded`: `true`/`false` to say so, absent
    /// to decide from the bytes). `status` absent or 0: no response.
    /// `version` above 1 is refused; unknown fields are ignored.
    Ndjson,
    /// Squid native access.log:
    /// `time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type`.
    SquidNative,
    /// Squid (and Apache/nginx) combined format:
    /// `remotehost rfc931 authuser [date] "method URL version" status bytes "referer" "user-agent" code:peerstatus`.
    SquidCombined,
    /// Zeek http.log, ASCII/TSV writer with `#fields` header.
    ZeekTsv,
    /// Zeek http.log, JSON writer (one object a line).
    ZeekJson,
}

impl LogFormat {
    /// Every format, in the order [`sniff`] prefers them.
    pub const ALL: [LogFormat; 6] = [
        LogFormat::Har,
        LogFormat::Ndjson,
        LogFormat::SquidNative,
        LogFormat::SquidCombined,
        LogFormat::ZeekTsv,
        LogFormat::ZeekJson,
    ];

    /// The name `--input-format` takes: `har`, `ndjson`, `squid`,
    /// `squid-combined`, `zeek`, `zeek-json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Har => "har",
            LogFormat::Ndjson => "ndjson",
            LogFormat::SquidNative => "squid",
            LogFormat::SquidCombined => "squid-combined",
            LogFormat::ZeekTsv => "zeek",
            LogFormat::ZeekJson => "zeek-json",
        }
    }

    /// Formats that log bodies (HAR, NDJSON); the others only give host,
    /// path and a few headers.
    pub fn has_bodies(self) -> bool {
        matches!(self, LogFormat::Har | LogFormat::Ndjson)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        LogFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = LogFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown log format '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// Limits. Every buffer this crate keeps is bounded by one of these.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Decoded bytes kept per body (as `Http1Config::max_body`); more is
    /// counted and flagged `truncated`. Default 8 MiB.
    pub max_body: usize,
    /// Largest line, or HAR entry, read; a longer one is skipped and
    /// counted as malformed. Default 64 MiB.
    pub max_record_bytes: usize,
    /// Malformed records reported one by one through the warning callback;
    /// after that they are only counted. Default 20.
    pub max_reported_errors: usize,
    /// Largest server-sent event kept from an event-stream body (as
    /// `Http1Config::max_sse_event_bytes`). Default 1 MiB.
    pub max_sse_event_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_body: 8 << 20,
            max_record_bytes: 64 << 20,
            max_reported_errors: 20,
            max_sse_event_bytes: 1 << 20,
        }
    }
}

/// What one log produced and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReport {
    /// Input name as given (a path, or `-`).
    pub input: String,
    pub format: LogFormat,
    /// Records read: lines or HAR entries that carry an exchange, including
    /// malformed ones (blank lines and Zeek `#` headers are not records).
    pub records: u64,
    /// Exchanges handed to the sink.
    pub exchanges: u64,
    /// Records skipped as malformed.
    pub malformed: u64,
    /// Set when the input broke off before its end (a HAR cut mid-file, a
    /// read error after records were processed): everything before was
    /// processed. One line, naming the input.
    pub truncated: Option<String>,
}

/// Why a log could not be read at all.
#[derive(Debug)]
pub enum LogError {
    /// The input could not be opened or read.
    Io { input: String, source: io::Error },
    /// The input is not a log this crate knows (or not the forced format).
    UnknownFormat { input: String, reason: String },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { input, source } => write!(f, "{input}: cannot read: {source}"),
            LogError::UnknownFormat { input, reason } => {
                write!(f, "{input}: not a known log format: {reason}")
            }
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            LogError::UnknownFormat { .. } => None,
        }
    }
}

/// Opens `input` for [`process_log`]: a path, or `-` for standard input.
pub fn open_log(input: &str) -> Result<Box<dyn BufRead + Send>, LogError> {
    if input == "-" {
        return Ok(Box::new(io::BufReader::new(io::stdin())));
    }
    match std::fs::File::open(input) {
        Ok(f) => Ok(Box::new(io::BufReader::with_capacity(64 << 10, f))),
        Err(source) => Err(LogError::Io {
            input: input.to_string(),
            source,
        }),
    }
}

/// Reads the log `reader` (named `input` in messages and
/// `Origin`s) to its end and hands every
/// exchange to `sink` as soon as its line or entry is complete.
///
/// `format`: `None` sniffs it from the first line (or first KiBs). Each
/// malformed record is counted and, up to
/// [`LogConfig::max_reported_errors`], reported through `warn` as
/// `input:line: reason` (HAR: `input: entry N (line L): reason`); the cut of
/// a truncated HAR is reported through `warn` too and in
/// [`LogReport::truncated`].
///
/// Errors: the input cannot be read before any record was processed, or it
/// is no known log format.
pub fn process_log(
    input: &str,
    reader: impl BufRead,
    format: Option<LogFormat>,
    config: &LogConfig,
    ids: &ExchangeIds,
    sink: &mut dyn FnMut(Record),
    warn: &mut dyn FnMut(String),
) -> Result<LogReport, LogError> {
    let mut src = Prefixed::new(reader);
    let gzipped = starts_with(&mut src, GZIP_MAGIC).map_err(|source| LogError::Io {
        input: input.to_string(),
        source,
    })?;
    if gzipped {
        // Rotated logs are often gzipped: read them through a streaming
        // decoder (memory stays bounded; a corrupt or cut stream ends the
        // input like a read error).
        let mut decoded =
            io::BufReader::with_capacity(64 << 10, flate2::bufread::MultiGzDecoder::new(src));
        return process_plain(input, &mut decoded, format, config, ids, sink, warn);
    }
    process_plain(input, &mut src, format, config, ids, sink, warn)
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// Whether the input starts with `magic` (reads ahead as far as needed).
fn starts_with<R: BufRead>(src: &mut Prefixed<R>, magic: &[u8]) -> io::Result<bool> {
    while src.ahead().len() < magic.len() && magic.starts_with(src.ahead()) {
        if !src.read_ahead(sniff::SNIFF_LIMIT)? {
            break;
        }
    }
    Ok(src.ahead().starts_with(magic))
}

fn process_plain(
    input: &str,
    reader: &mut dyn BufRead,
    format: Option<LogFormat>,
    config: &LogConfig,
    ids: &ExchangeIds,
    sink: &mut dyn FnMut(Record),
    warn: &mut dyn FnMut(String),
) -> Result<LogReport, LogError> {
    let mut src = Prefixed::new(reader);
    let format = match format {
        Some(f) => f,
        None => sniff::sniff_stream(&mut src).map_err(|e| match e {
            sniff::SniffError::Io(source) => LogError::Io {
                input: input.to_string(),
                source,
            },
            sniff::SniffError::Unknown(reason) => LogError::UnknownFormat {
                input: input.to_string(),
                reason,
            },
        })?,
    };
    if let Err(source) = skip_bom(&mut src) {
        return Err(LogError::Io {
            input: input.to_string(),
            source,
        });
    }
    let mut ctx = Ctx {
        input,
        config,
        ids,
        sink,
        warn,
        report: LogReport {
            input: input.to_string(),
            format,
            records: 0,
            exchanges: 0,
            malformed: 0,
            truncated: None,
        },
    };
    match format {
        LogFormat::Har => har::run(&mut src, &mut ctx)?,
        _ => run_lines(&mut src, format, &mut ctx)?,
    }
    Ok(ctx.report)
}

/// Drops a UTF-8 byte order mark at the start of the input (editors and
/// Windows tools write one).
fn skip_bom<R: BufRead>(src: &mut Prefixed<R>) -> io::Result<()> {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    if starts_with(src, BOM)? {
        src.consume(BOM.len());
    }
    Ok(())
}

/// What a line-based parser made of one line.
pub(crate) enum LineOutcome {
    /// Not a record (blank line, header line).
    Skip,
    /// A record that logs no HTTP exchange (a Squid line for a connection
    /// that never sent a request): counted, not emitted.
    NoExchange,
    Exchange(Box<Exchange>),
    Malformed(String),
}

fn run_lines(src: &mut impl BufRead, format: LogFormat, ctx: &mut Ctx<'_>) -> Result<(), LogError> {
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    let mut zeek_tsv = zeek::TsvState::default();
    let mut conn_users = zeek::ConnUsers::default();
    loop {
        let line = match read_line(src, &mut buf, ctx.config.max_record_bytes) {
            Ok(l) => l,
            Err(source) => return ctx.read_failed(source),
        };
        line_no = line_no.saturating_add(1);
        let outcome = match line {
            Line::Eof => return Ok(()),
            Line::TooLong(len) => LineOutcome::Malformed(format!(
                "line of {len} bytes exceeds max_record_bytes ({})",
                ctx.config.max_record_bytes
            )),
            Line::Complete => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    LineOutcome::Skip
                } else {
                    match format {
                        LogFormat::Ndjson => ndjson::parse_line(&buf, ctx.config),
                        LogFormat::SquidNative => squid::parse_native(&buf),
                        LogFormat::SquidCombined => squid::parse_combined(&buf),
                        LogFormat::ZeekJson => zeek::parse_json_line(&buf),
                        LogFormat::ZeekTsv => match zeek_tsv.line(&buf, ctx.report.records == 0) {
                            Ok(o) => o,
                            Err(reason) => {
                                return Err(LogError::UnknownFormat {
                                    input: ctx.input.to_string(),
                                    reason,
                                })
                            }
                        },
                        LogFormat::Har => LineOutcome::Skip,
                    }
                }
            }
        };
        match outcome {
            LineOutcome::Skip => {}
            LineOutcome::NoExchange => ctx.report.records += 1,
            LineOutcome::Exchange(mut ex) => {
                ctx.report.records += 1;
                if matches!(format, LogFormat::ZeekTsv | LogFormat::ZeekJson) {
                    conn_users.attribute(&mut ex);
                }
                ctx.emit(ex, line_no);
            }
            LineOutcome::Malformed(reason) => {
                ctx.report.records += 1;
                ctx.malformed(&format!("{}:{line_no}", ctx.input), &reason);
            }
        }
    }
}

/// Shared state of one run: where records go, what is counted.
pub(crate) struct Ctx<'a> {
    pub(crate) input: &'a str,
    pub(crate) config: &'a LogConfig,
    ids: &'a ExchangeIds,
    sink: &'a mut dyn FnMut(Record),
    warn: &'a mut dyn FnMut(String),
    pub(crate) report: LogReport,
}

impl Ctx<'_> {
    /// Gives `ex` its id and origin and hands it out.
    pub(crate) fn emit(&mut self, mut ex: Box<Exchange>, position: u64) {
        ex.id = self.ids.next_id();
        ex.origin = Origin {
            input: self.input.to_string(),
            position,
        };
        self.report.exchanges += 1;
        (self.sink)(Record::Exchange(ex));
    }

    /// Counts a malformed record; reports it while under the cap.
    pub(crate) fn malformed(&mut self, place: &str, reason: &str) {
        self.report.malformed += 1;
        let cap = self.config.max_reported_errors as u64;
        if self.report.malformed <= cap {
            (self.warn)(format!("{place}: {reason}"));
        } else if self.report.malformed == cap + 1 {
            (self.warn)(format!(
                "{}: more than {cap} malformed records; further ones are only counted",
                self.input
            ));
        }
    }

    /// The input broke off; non-fatal once something was read.
    pub(crate) fn cut(&mut self, message: String) {
        (self.warn)(message.clone());
        self.report.truncated = Some(message);
    }

    fn read_failed(&mut self, source: io::Error) -> Result<(), LogError> {
        if self.report.records == 0 {
            return Err(LogError::Io {
                input: self.input.to_string(),
                source,
            });
        }
        self.cut(format!(
            "{}: read error after {} records: {source}",
            self.input, self.report.records
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
