//! Property tests: hostile bytes never panic a parser; a HAR read in any
//! split gives the same exchanges, and a HAR cut anywhere gives exactly the
//! entries that were complete before the cut.

use std::io::{BufReader, Read};

use proptest::prelude::*;
use serde_json::json;
use shadowmcp_exchange::{Exchange, Record};
use shadowmcp_http1::ExchangeIds;
use shadowmcp_logs::{process_log, sniff, LogConfig, LogFormat, LogReport};

/// Hands out `data` in pieces ending at the given offsets.
struct Pieces {
    data: Vec<u8>,
    cuts: Vec<usize>,
    pos: usize,
}

impl Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let next = self
            .cuts
            .iter()
            .copied()
            .find(|&c| c > self.pos)
            .unwrap_or(self.data.len())
            .min(self.data.len());
        let n = (next - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn run(
    data: &[u8],
    cuts: Vec<usize>,
    format: Option<LogFormat>,
    config: &LogConfig,
) -> (Result<LogReport, String>, Vec<Exchange>) {
    let mut got = Vec::new();
    let reader = BufReader::with_capacity(
        1 << 16,
        Pieces {
            data: data.to_vec(),
            cuts,
            pos: 0,
        },
    );
    let res = process_log(
        "p",
        reader,
        format,
        config,
        &ExchangeIds::new(),
        &mut |r| {
            if let Record::Exchange(ex) = r {
                got.push(*ex);
            }
        },
        &mut |_| {},
    )
    .map_err(|e| e.to_string());
    (res, got)
}

/// A compact HAR and the offset just after each entry's closing brace.
fn har() -> (Vec<u8>, Vec<usize>) {
    let entries = [
        json!({"startedDateTime": "2026-11-29T07:25:34.147Z",
               "request": {"method": "POST", "url": "https://mcp.example.com/mcp", "headers": [{"name": "Content-Type", "value": "application/json"}],
                           "postData": {"mimeType": "application/json", "text": "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"s\":\"}]\\\"\"}}"}},
               "response": {"status": 200, "headers": [], "content": {"size": 2, "text": "e30=", "encoding": "base64"}}}),
        json!({"request": {"method": "GET", "url": "https://mcp.example.com/sse", "headers": []},
               "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "text/event-stream"}],
                            "content": {"size": 20, "text": "data: {\"a\":[1,2]}\n\n"}}}),
        json!({"request": {"method": "GET", "url": "http://x.example/", "headers": []},
               "response": {"status": 0, "headers": [], "content": {"size": 0}}}),
    ];
    let mut doc =
        br#"{"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": ["#
            .to_vec();
    let mut ends = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            doc.extend_from_slice(b",\n  ");
        }
        doc.extend_from_slice(e.to_string().as_bytes());
        ends.push(doc.len());
    }
    doc.extend_from_slice(b"]}}\n");
    (doc, ends)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..64) {
        let cuts: Vec<usize> = (1..=data.len() / step).map(|i| i * step).collect();
        let config = LogConfig { max_record_bytes: 200, max_body: 64, ..LogConfig::default() };
        let _ = sniff(&data);
        let _ = run(&data, cuts.clone(), None, &config);
        for f in LogFormat::ALL {
            let (res, got) = run(&data, cuts.clone(), Some(f), &config);
            if let Ok(report) = res {
                prop_assert_eq!(report.exchanges, got.len() as u64);
                prop_assert!(report.exchanges + report.malformed <= report.records);
            }
        }
    }

    #[test]
    fn log_like_noise_never_panics(lines in proptest::collection::vec(
        prop_oneof![
            Just("1795937134.147 12 10.0.0.1 TCP_MISS/200 5 GET http://a.example/ - HIER_DIRECT/1.2.3.4 -".to_string()),
            Just("#fields\tts\tuid\tmethod\thost\turi\tstatus_code".to_string()),
            Just("1.5\tC1\tGET\ta.example\t/x\t200".to_string()),
            Just(r#"{"method":"GET","url":"http://a.example/","status":200,"response_headers":{"Content-Type":"text/event-stream"},"response_body":"data: x\n\n"}"#.to_string()),
            Just(r#"{"log":{"entries":[{"request":{"method":"GET","url":"/"}}"#.to_string()),
            "[ -~]{0,80}",
        ], 0..12)) {
        let data = lines.join("\n");
        let _ = run(data.as_bytes(), vec![], None, &LogConfig::default());
        for f in LogFormat::ALL {
            let _ = run(data.as_bytes(), vec![7, 13, 50], Some(f), &LogConfig::default());
        }
    }

    #[test]
    fn har_in_any_split_gives_the_same_exchanges(mut cuts in proptest::collection::vec(0usize..2000, 0..40)) {
        let (doc, _) = har();
        cuts.sort_unstable();
        let (whole, want) = run(&doc, vec![], None, &LogConfig::default());
        let (split, got) = run(&doc, cuts, None, &LogConfig::default());
        prop_assert_eq!(want.len(), 3);
        prop_assert_eq!(whole.unwrap(), split.unwrap());
        prop_assert_eq!(got, want);
    }

    #[test]
    fn har_cut_anywhere_gives_the_entries_before_the_cut(cut in 0usize..2000, step in 1usize..300) {
        let (doc, ends) = har();
        let (_, all) = run(&doc, vec![], None, &LogConfig::default());
        let cut = cut.min(doc.len());
        let cuts: Vec<usize> = (1..=cut / step).map(|i| i * step).collect();
        let (res, got) = run(&doc[..cut], cuts, Some(LogFormat::Har), &LogConfig::default());
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        prop_assert_eq!(&got[..], &all[..complete]);
        if let Ok(report) = res {
            prop_assert_eq!(report.truncated.is_some(), cut < doc.len() - 1 && cut > 0);
        }
    }
}
