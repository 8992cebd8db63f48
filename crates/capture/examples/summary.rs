//! Prints what the capture crate sees in each capture given on the command
//! line: packets, TCP segments, TCP payload bytes and the skip counters.
//!
//! `cargo run -p shadowmcp-capture --example summary -- a.pcap b.pcapng.gz`

use shadowmcp_capture::{CaptureReader, PacketDecoder};

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let mut reader = match CaptureReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        let mut decoder = PacketDecoder::default();
        let mut payload_bytes = 0u64;
        let mut missing = 0u64;
        loop {
            match reader.next_packet() {
                Ok(Some(packet)) => {
                    if let Some(tcp) = decoder.decode(&packet) {
                        payload_bytes += tcp.payload.len() as u64;
                        missing += u64::from(tcp.missing);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("{}: {e}", if e.is_fatal() { "error" } else { "warning" });
                    failed |= e.is_fatal();
                    break;
                }
            }
        }
        decoder.finish();
        let s = decoder.stats();
        println!(
            "{path}: packets={} tcp_segments={} tcp_payload_bytes={payload_bytes} missing={missing} \
             non_ip={} non_tcp={} unknown_linktype={} malformed={} fragments={}/{} reader={:?}",
            s.packets,
            s.tcp_segments,
            s.non_ip,
            s.non_tcp,
            s.unknown_linktype,
            s.malformed_total(),
            s.fragments_reassembled,
            s.fragments_seen,
            reader.stats(),
        );
    }
    if failed {
        std::process::exit(1);
    }
}
