//! A real tcpdump capture, its editcap conversions (pcapng, nanosecond
//! pcap) and TShark's dissection of it: an independent check of the reader
//! and decoder (see tests/data/README.md).

use std::path::PathBuf;

use shadowmcp_capture::{CaptureReader, PacketDecoder};

fn data(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", name]
        .iter()
        .collect();
    p.to_str().unwrap().to_string()
}

/// One line per TCP segment, in TShark's field layout.
fn dissect(path: &str) -> Vec<String> {
    let mut reader = CaptureReader::open(path).unwrap();
    let mut decoder = PacketDecoder::default();
    let mut lines = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        let t = decoder.decode(&p).expect("every packet is TCP");
        let f = &t.flags;
        let flags = u8::from(f.fin)
            | u8::from(f.syn) << 1
            | u8::from(f.rst) << 2
            | u8::from(f.psh) << 3
            | u8::from(f.ack) << 4;
        lines.push(format!(
            "{}\t{}.{:09}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0x{:04x}",
            t.number,
            t.ts.secs(),
            t.ts.subsec_nanos(),
            t.src.ip(),
            t.src.port(),
            t.dst.ip(),
            t.dst.port(),
            t.seq,
            t.ack,
            t.payload.len(),
            flags
        ));
    }
    lines
}

#[test]
fn matches_tshark_in_every_container() {
    let expected: Vec<String> = std::fs::read_to_string(data("tshark.tsv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(expected.len(), 20);
    for file in ["tcpdump.pcap", "editcap.pcapng", "editcap-ns.pcap"] {
        assert_eq!(dissect(&data(file)), expected, "{file}");
    }
}
