//! Opening an input: a capture (pcap, pcapng, gzip'd or not) or a proxy log
//! (HAR, NDJSON, Squid, Zeek), told apart by content unless
//! `--input-format` says.

use std::io::{BufRead, BufReader, Cursor, Read};

use shadowmcp_capture::CaptureReader;
use shadowmcp_engine::CaptureConfig;
use shadowmcp_logs::LogFormat;

/// What `--input-format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// Decide from the content.
    Auto,
    /// pcap or pcapng, optionally gzip-compressed.
    Capture,
    Log(LogFormat),
}

pub fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    match s {
        "auto" => Ok(InputFormat::Auto),
        "pcap" | "pcapng" | "capture" => Ok(InputFormat::Capture),
        other => other
            .parse::<LogFormat>()
            .map(InputFormat::Log)
            .map_err(|_| {
                let logs: Vec<&str> = LogFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown input format {other:?} (auto, pcap, {})",
                    logs.join(", ")
                )
            }),
    }
}

/// An opened input.
pub enum Input {
    Capture(Box<CaptureReader>),
    Log {
        name: String,
        reader: Box<dyn BufRead + Send>,
        format: Option<LogFormat>,
    },
}

/// Most bytes read ahead to look inside a gzip stream.
const SNIFF_BYTES: usize = 4096;

fn is_capture_magic(b: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1], // pcap, little-endian, µs
        [0xa1, 0xb2, 0xc3, 0xd4], // pcap, big-endian, µs
        [0x4d, 0x3c, 0xb2, 0xa1], // pcap, little-endian, ns
        [0xa1, 0xb2, 0x3c, 0x4d], // pcap, big-endian, ns
        [0x0a, 0x0d, 0x0d, 0x0a], // pcapng section header
    ];
    b.len() >= 4 && MAGICS.iter().any(|m| b[..4] == m[..])
}

/// Opens `name` (a path, or `-` for standard input) and decides what it is.
/// Only the first bytes are read ahead; they are handed on with the rest, so
/// a pipe works as well as a file.
pub fn open_input(
    name: &str,
    format: InputFormat,
    config: &CaptureConfig,
) -> Result<Input, String> {
    let mut raw: Box<dyn Read + Send> = if name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(name).map_err(|e| format!("{name}: {e}"))?)
    };
    // Read ahead only as far as needed: a log piped from `tail -F` must
    // not wait for kilobytes before its first line is scanned.
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut chunk = [0u8; 512];
    loop {
        let enough = if head.starts_with(&[0x1f, 0x8b]) {
            head.len() >= SNIFF_BYTES || gzip_prefix(&head).len() >= 4
        } else {
            head.len() >= 4
        };
        if enough || format != InputFormat::Auto {
            break;
        }
        let want = (SNIFF_BYTES - head.len()).min(chunk.len());
        match raw.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    let is_capture = match format {
        InputFormat::Capture => true,
        InputFormat::Log(_) => false,
        InputFormat::Auto => {
            if head.is_empty() {
                return Err(format!("{name}: empty input, not a capture or a log"));
            }
            is_capture_magic(&head) || is_capture_magic(&gzip_prefix(&head))
        }
    };
    if is_capture && name != "-" {
        // Opened again by path: the reader then knows it reads a file,
        // which the workers can share (engine::process_capture_sharded).
        drop(raw);
        return CaptureReader::open_with(name, config.reader.clone())
            .map(|r| Input::Capture(Box::new(r)))
            .map_err(|e| e.to_string());
    }
    let rest: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(raw));
    if is_capture {
        CaptureReader::from_reader_with(name, rest, config.reader.clone())
            .map(|r| Input::Capture(Box::new(r)))
            .map_err(|e| e.to_string())
    } else {
        Ok(Input::Log {
            name: name.to_string(),
            reader: Box::new(BufReader::with_capacity(64 << 10, rest)),
            format: match format {
                InputFormat::Log(f) => Some(f),
                _ => None,
            },
        })
    }
}

/// The first (up to 4) bytes a gzip stream decompresses to, from the part
/// of it read so far (a gzip'd log goes to the log reader, which
/// decompresses it itself).
fn gzip_prefix(head: &[u8]) -> Vec<u8> {
    if !head.starts_with(&[0x1f, 0x8b]) {
        return Vec::new();
    }
    let mut out = [0u8; 4];
    let mut decoder = flate2::read::GzDecoder::new(head);
    let mut filled = 0;
    while filled < out.len() {
        match decoder.read(&mut out[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    out[..filled].to_vec()
}

/// What reading one input to its end produced.
pub enum Outcome {
    Capture(Box<shadowmcp_engine::CaptureReport>),
    Log(shadowmcp_logs::LogReport),
}

impl Outcome {
    /// The one-line warning when the input was cut short.
    pub fn truncated(&self) -> Option<&str> {
        match self {
            Outcome::Capture(r) => r.truncated.as_deref(),
            Outcome::Log(r) => r.truncated.as_deref(),
        }
    }
}

/// Reads an opened input to its end on this thread, handing every record
/// to `sink`; malformed log records go to `warn`.
pub fn process_input(
    input: Input,
    config: &CaptureConfig,
    sink: &mut dyn FnMut(shadowmcp_exchange::Record),
    warn: &mut dyn FnMut(String),
) -> Result<Outcome, String> {
    match input {
        Input::Capture(reader) => shadowmcp_engine::process_reader(*reader, config, sink)
            .map(|r| Outcome::Capture(Box::new(r)))
            .map_err(|e| e.to_string()),
        Input::Log {
            name,
            reader,
            format,
        } => read_log(&name, reader, format, config, sink, warn)
            .map(Outcome::Log)
            .map_err(|e| log_error(&e, format.is_none())),
    }
}

/// Reads one proxy log to its end with the capture path's body cap, handing
/// every record to `sink` and malformed-record warnings to `warn`.
pub fn read_log(
    name: &str,
    reader: Box<dyn BufRead + Send>,
    format: Option<LogFormat>,
    config: &CaptureConfig,
    sink: &mut dyn FnMut(shadowmcp_exchange::Record),
    warn: &mut dyn FnMut(String),
) -> Result<shadowmcp_logs::LogReport, shadowmcp_logs::LogError> {
    let log_config = shadowmcp_logs::LogConfig {
        max_body: config.http1.max_body,
        ..shadowmcp_logs::LogConfig::default()
    };
    shadowmcp_logs::process_log(
        name,
        reader,
        format,
        &log_config,
        &shadowmcp_http1::ExchangeIds::new(),
        sink,
        warn,
    )
}

/// One line for a log that could not be read. When the format was guessed,
/// the input may have been meant as a capture: say both.
pub fn log_error(e: &shadowmcp_logs::LogError, guessed: bool) -> String {
    match e {
        shadowmcp_logs::LogError::UnknownFormat { input, reason } if guessed => {
            let logs: Vec<&str> = LogFormat::ALL.iter().map(|f| f.as_str()).collect();
            format!(
                "{input}: not a capture (pcap, pcapng) or a known proxy log ({}): {reason}",
                logs.join(", ")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tells_captures_from_logs() {
        assert!(is_capture_magic(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]));
        assert!(is_capture_magic(&[0x0a, 0x0d, 0x0d, 0x0a]));
        assert!(!is_capture_magic(b"{\"log\""));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4]).unwrap();
        assert!(is_capture_magic(&gzip_prefix(&gz.finish().unwrap())));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"method\":\"GET\"}\n").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(gzip_prefix(&gz), b"{\"me");
    }

    #[test]
    fn input_formats() {
        assert_eq!(parse_input_format("auto"), Ok(InputFormat::Auto));
        assert_eq!(parse_input_format("pcap"), Ok(InputFormat::Capture));
        assert_eq!(
            parse_input_format("har"),
            Ok(InputFormat::Log(LogFormat::Har))
        );
        assert_eq!(
            parse_input_format("zeek-json"),
            Ok(InputFormat::Log(LogFormat::ZeekJson))
        );
        assert!(parse_input_format("xml")
            .unwrap_err()
            .contains("squid-combined"));
    }
}
