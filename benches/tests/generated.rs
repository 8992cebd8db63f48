//! The generator's output against shadowmcp itself: deterministic bytes,
//! exchange counts that the engine reconstructs exactly as labelled, and
//! alerts on exactly the MCP-labelled flows.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::Arc;

use shadowmcp_benches::{generate, GenConfig, Mix, DECOY_KINDS, MCP_KINDS};
use shadowmcp_capture::CaptureReader;
use shadowmcp_detect::{DetectConfig, Detector};
use shadowmcp_engine::{process_reader, CaptureConfig, CaptureReport};
use shadowmcp_exchange::Record;
use shadowmcp_policy::Policy;
use shadowmcp_rules::RulePack;
use shadowmcp_scan::{ScanOptions, Scanner};

fn make(config: &GenConfig) -> (Vec<u8>, Vec<serde_json::Value>) {
    let (mut pcap, mut labels) = (Vec::new(), Vec::new());
    let summary = generate(config, &mut pcap, &mut labels).unwrap();
    assert_eq!(summary.bytes, pcap.len() as u64);
    let labels: Vec<serde_json::Value> = String::from_utf8(labels)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(labels.len() as u64, summary.flows);
    (pcap, labels)
}

/// A 2 MB capture where MCP and decoys are common enough that every kind
/// shows up.
fn rich() -> GenConfig {
    GenConfig {
        size: 2_000_000,
        seed: 11,
        concurrent_flows: 40,
        mix: Mix {
            mcp_per_mille: 350,
            decoy_per_mille: 350,
        },
        ..GenConfig::default()
    }
}

fn run(pcap: Vec<u8>) -> (Vec<Record>, CaptureReport) {
    let reader = CaptureReader::from_reader("gen.pcap", Cursor::new(pcap)).unwrap();
    let mut records = Vec::new();
    let report =
        process_reader(reader, &CaptureConfig::default(), &mut |r| records.push(r)).unwrap();
    (records, report)
}

fn flow_key(a: &str, b: &str) -> String {
    let mut v = [a.to_string(), b.to_string()];
    v.sort();
    v.join("-")
}

fn label_key(label: &serde_json::Value) -> String {
    let (c, s) = label["flow"].as_str().unwrap().split_once('-').unwrap();
    flow_key(c, s)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = GenConfig {
        size: 400_000,
        seed: 5,
        ..GenConfig::default()
    };
    let a = make(&config);
    let b = make(&config);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    let c = make(&GenConfig { seed: 6, ..config });
    assert_ne!(a.0, c.0);
}

#[test]
fn size_is_roughly_the_requested_one() {
    for size in [1_000_000u64, 3_000_000] {
        let (pcap, _) = make(&GenConfig {
            size,
            seed: 2,
            ..GenConfig::default()
        });
        let len = pcap.len() as u64;
        // One download can be 2 MiB, so allow that much over.
        assert!(
            len > size / 2 && len < size + (5 << 20) / 2,
            "{len} for {size}"
        );
    }
}

#[test]
fn engine_reconstructs_the_labelled_exchanges_cleanly() {
    let (pcap, labels) = make(&rich());
    let kinds: BTreeSet<&str> = labels.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for k in MCP_KINDS.iter().chain(DECOY_KINDS) {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    let (records, report) = run(pcap);
    assert_eq!(report.decode.malformed_total(), 0);
    assert_eq!(report.reassembly.gaps, 0);
    assert_eq!(report.reassembly.conns_midstream, 0);
    assert_eq!(report.http.parse_errors.total(), 0, "{:?}", report.http);
    assert_eq!(report.reassembly.conns_opened, labels.len() as u64);
    assert_eq!(report.reassembly.closed_fin, labels.len() as u64);

    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        if let Record::Exchange(ex) = r {
            let f = ex.flow.as_ref().unwrap();
            *seen
                .entry(flow_key(&f.client.to_string(), &f.server.to_string()))
                .or_default() += 1;
            assert!(
                ex.response.is_some(),
                "exchange without response: {:?}",
                ex.request
            );
        }
    }
    let expected: BTreeMap<String, u64> = labels
        .iter()
        .map(|l| (label_key(l), l["exchanges"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn scan_alerts_on_exactly_the_mcp_flows_and_names_their_servers() {
    let (pcap, labels) = make(&rich());
    let (records, _) = run(pcap);
    let detector = Detector::new(&RulePack::default_pack(), DetectConfig::default()).unwrap();
    let mut scanner = Scanner::new(
        Arc::new(detector),
        Arc::new(Policy::default()),
        ScanOptions::default(),
    );
    let mut events = Vec::new();
    for r in &records {
        scanner.on_record(r, &mut events);
    }
    let mut alerted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ev in &events {
        let j = &ev.json;
        let key = flow_key(
            &format!("{}:{}", j["src_ip"].as_str().unwrap(), j["src_port"]),
            &format!("{}:{}", j["dest_ip"].as_str().unwrap(), j["dest_port"]),
        );
        alerted.entry(key).or_default().extend(ev.server.clone());
    }
    let mcp: BTreeMap<String, &serde_json::Value> = labels
        .iter()
        .filter(|l| l["mcp"] == true)
        .map(|l| (label_key(l), l))
        .collect();
    assert!(mcp.len() >= 10);
    let alerted_keys: BTreeSet<&String> = alerted.keys().collect();
    let mcp_keys: BTreeSet<&String> = mcp.keys().collect();
    let kind_of = |k: &String| {
        labels
            .iter()
            .find(|l| &label_key(l) == k)
            .map(|l| l["kind"].to_string())
    };
    let wrong: Vec<_> = alerted_keys
        .symmetric_difference(&mcp_keys)
        .map(|k| kind_of(k))
        .collect();
    assert!(
        wrong.is_empty(),
        "flows alerted but not MCP, or MCP not alerted: {wrong:?}"
    );
    for (key, label) in &mcp {
        let server = label["server"].as_str().unwrap();
        assert!(
            alerted[key].iter().any(|s| s == server),
            "{}: label server {server}, alerts name {:?}",
            label["kind"],
            alerted[key]
        );
    }
}

#[test]
fn syn_flood_adds_unanswered_syns_from_distinct_sources() {
    let config = GenConfig {
        size: 300_000,
        seed: 3,
        syn_flood: 5_000,
        ..GenConfig::default()
    };
    let (pcap, labels) = make(&config);
    let (_, report) = run(pcap);
    assert_eq!(report.reassembly.conns_opened, labels.len() as u64 + 5_000);
    assert_eq!(report.reassembly.closed_fin, labels.len() as u64);
}
