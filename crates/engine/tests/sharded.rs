//! The sharded pipeline produces the records of the single-threaded one,
//! whatever the worker count, the chunk size (which sets how often the
//! workers take turns reading and how soon the chunk budget runs out) and
//! the way packets arrive (a capture file read in shared chunks, a pipe or
//! any other source read by a thread of its own that copies payloads), and
//! it ends a cut or corrupt capture the same way.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use shadowmcp_capture::writer::PcapWriter;
use shadowmcp_capture::{CaptureError, CaptureReader, LinkType, ReaderConfig, ReaderStats};
use shadowmcp_engine::{
    process_capture_sharded, process_reader, CaptureConfig, CaptureReport, Next, PacketSource,
    RecordHandler, ShardConfig,
};
use shadowmcp_exchange::Record;

fn fixture_captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pcap");
    let mut files = Vec::new();
    for dir in ["real", "mcp", "decoys", "adversarial", "tls"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "pcap" || ext == "pcapng" {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "fixtures not found");
    files
}

fn config(chunk_size: usize) -> CaptureConfig {
    CaptureConfig {
        reader: ReaderConfig {
            initial_buffer_size: chunk_size,
            ..ReaderConfig::default()
        },
        ..CaptureConfig::default()
    }
}

/// A capture file with `bytes` (the workers share the chunks of files
/// only), named `name` in errors and records.
struct TempCapture {
    dir: PathBuf,
    path: PathBuf,
}

impl TempCapture {
    fn new(name: &str, bytes: &[u8]) -> TempCapture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shadowmcp-sharded-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempCapture { dir, path }
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn open(capture: &TempCapture, config: &CaptureConfig) -> CaptureReader {
    let r =
        CaptureReader::open_with(capture.path.to_str().unwrap(), config.reader.clone()).unwrap();
    assert!(r.is_file());
    r
}

/// The same bytes through a reader that is not a file (a pipe): read by a
/// thread of its own.
fn open_piped(name: &str, bytes: &[u8], config: &CaptureConfig) -> CaptureReader {
    let r =
        CaptureReader::from_reader_with(name, Cursor::new(bytes.to_vec()), config.reader.clone())
            .unwrap();
    assert!(!r.is_file());
    r
}

/// Records in a stable order (workers interleave them).
fn sorted(records: Vec<Record>) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

type Outcome = (Vec<String>, Result<CaptureReport, String>);

fn single(name: &str, bytes: &[u8], config: &CaptureConfig) -> Outcome {
    let mut records = Vec::new();
    let report = process_reader(open_piped(name, bytes, config), config, &mut |r| {
        records.push(r)
    });
    (sorted(records), report.map_err(|e| e.to_string()))
}

struct Collect;

impl RecordHandler for Collect {
    type Output = Record;
    fn on_record(&mut self, record: Record, out: &mut Vec<Record>) {
        out.push(record);
    }
}

fn sharded<S: PacketSource>(source: S, config: &CaptureConfig, workers: usize) -> Outcome {
    let mut records = Vec::new();
    let shard = ShardConfig {
        workers,
        ..ShardConfig::default()
    };
    let report = process_capture_sharded(source, config, shard, |_| Collect, |r| records.push(r));
    (sorted(records), report.map_err(|e| e.to_string()))
}

/// A capture reader seen only as a packet source: the path of live
/// captures, where the reading thread copies every payload.
struct Copied(CaptureReader);

impl PacketSource for Copied {
    fn input(&self) -> &str {
        self.0.input()
    }

    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        Ok(match self.0.next_packet()? {
            Some(p) => Next::Packet(p),
            None => Next::End,
        })
    }

    fn stats(&self) -> ReaderStats {
        self.0.stats().clone()
    }

    fn take_secrets(&mut self) -> Vec<shadowmcp_capture::DecryptionSecrets> {
        self.0.take_decryption_secrets()
    }
}

/// The figures that must not depend on the thread count.
fn summary(report: &Result<CaptureReport, String>) -> String {
    match report {
        Ok(r) => format!(
            "records {} packets {} bytes {} segments {} exchanges {} truncated {:?}",
            r.records,
            r.reader.packets,
            r.reader.bytes,
            r.decode.tcp_segments,
            r.http.exchanges,
            r.truncated
        ),
        Err(e) => format!("error {e}"),
    }
}

/// The first difference of two record lists, briefly.
fn differ(want: &[String], got: &[String]) -> Option<String> {
    if want == got {
        return None;
    }
    let only = |a: &[String], b: &[String]| {
        a.iter()
            .find(|r| !b.contains(r))
            .map(|r| r.chars().take(300).collect::<String>())
    };
    Some(format!(
        "{} records, expected {}; first unexpected: {:?}; first missing: {:?}",
        got.len(),
        want.len(),
        only(got, want),
        only(want, got)
    ))
}

fn assert_same(name: &str, bytes: &[u8]) {
    let (want, want_report) = single(name, bytes, &config(1 << 20));
    let file = TempCapture::new(name, bytes);
    // Records and errors name the input as opened.
    let path = file.path.to_str().unwrap().to_string();
    let as_file = |text: String| text.replace(&path, name);
    for chunk_size in [64, 1500, 1 << 20] {
        let config = config(chunk_size);
        for workers in [1, 2, 3] {
            let (got, report) = sharded(open(&file, &config), &config, workers);
            let got: Vec<String> = got.into_iter().map(as_file).collect();
            let at = format!("{name}: {workers} workers, chunks of {chunk_size}");
            assert_eq!(differ(&want, &sorted_strings(got)), None, "{at}");
            assert_eq!(as_file(summary(&report)), summary(&want_report), "{at}");
        }
    }
    let config = config(1 << 20);
    let (got, report) = sharded(open_piped(name, bytes, &config), &config, 2);
    assert_eq!(differ(&want, &got), None, "{name}: piped");
    assert_eq!(summary(&report), summary(&want_report), "{name}: piped");
    let (got, report) = sharded(Copied(open_piped(name, bytes, &config)), &config, 2);
    assert_eq!(differ(&want, &got), None, "{name}: another packet source");
    assert_eq!(
        summary(&report),
        summary(&want_report),
        "{name}: another source"
    );
}

fn sorted_strings(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn every_fixture_gives_the_same_records_on_any_number_of_workers() {
    let mut with_records = 0;
    for path in fixture_captures() {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        if !single(name, &bytes, &config(1 << 20)).0.is_empty() {
            with_records += 1;
        }
        assert_same(name, &bytes);
    }
    assert!(with_records > 20);
}

/// The packets of every classic Ethernet fixture in one capture: many host
/// pairs, so every worker gets some.
fn merged_capture() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    let mut files = 0;
    for path in fixture_captures() {
        let Ok(mut r) = CaptureReader::open(path.to_str().unwrap()) else {
            continue;
        };
        if !matches!(r.format(), shadowmcp_capture::CaptureFormat::Pcap { .. }) {
            continue;
        }
        let mut first = true;
        while let Ok(Some(p)) = r.next_packet() {
            if first && p.linktype != LinkType::ETHERNET {
                break;
            }
            first = false;
            w.write_packet_with_len(p.ts, p.data, p.orig_len).unwrap();
        }
        files += usize::from(!first);
    }
    assert!(files > 10);
    w.into_inner()
}

#[test]
fn many_host_pairs_spread_over_workers_give_the_same_records() {
    let bytes = merged_capture();
    assert_same("merged.pcap", &bytes);
}

#[test]
fn a_cut_capture_ends_alike_and_counts_the_packets_before_the_cut() {
    let bytes = merged_capture();
    let cut = &bytes[..bytes.len() * 2 / 3];
    let (_, report) = single("cut.pcap", cut, &config(1 << 20));
    let report = report.unwrap();
    let truncated = report.truncated.clone().expect("the cut is reported");
    assert!(
        truncated.contains(&format!("{} complete packets", report.reader.packets)),
        "{truncated}"
    );
    assert_same("cut.pcap", cut);
}

#[test]
fn a_corrupt_record_fails_alike_after_the_packets_before_it() {
    let mut bytes = merged_capture();
    // The captured length of a record in the middle claims 4 GiB.
    let mut at = 24;
    for _ in 0..200 {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += 16 + caplen as usize;
    }
    bytes[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (records, report) = single("bad.pcap", &bytes, &config(1 << 20));
    assert!(report.unwrap_err().contains("more than the"));
    assert!(!records.is_empty());
    assert_same("bad.pcap", &bytes);
}
