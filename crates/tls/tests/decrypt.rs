//! Decryption of real traffic: curl against `openssl s_server` on
//! 127.0.0.1, captured with tcpdump, keys from curl's SSLKEYLOGFILE (see
//! `data/gen.sh`; tshark decrypted the same captures with the same keys).

mod common;

use std::sync::Arc;

use common::*;
use shadowmcp_tls::{
    Direction, IssueKind, KeyLog, TlsConnection, TlsEvent, TlsVersion, DSB_TLS_KEY_LOG,
};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":"fixture"}}}"#;

fn assert_mcp_exchange(out: &Output) {
    let req = String::from_utf8_lossy(&out.to_server);
    assert!(
        req.starts_with("GET /mcp HTTP/1.1\r\nHost: mcp.test:"),
        "{req}"
    );
    assert!(
        req.contains("Accept: application/json, text/event-stream\r\n"),
        "{req}"
    );
    assert!(req.ends_with("\r\n\r\n"), "{req}");
    let resp = String::from_utf8_lossy(&out.to_client);
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"),
        "{resp}"
    );
    assert!(resp.ends_with(&format!("\r\n\r\n{BODY}")), "{resp}");
}

fn decrypt_case(case: &str, version: TlsVersion, suite: u16) {
    let s = streams(case);
    let mut conn = TlsConnection::new(config(Some(keylog(case))));
    let out = run_records(&mut conn, &s);
    assert_mcp_exchange(&out);
    assert!(out.stopped.is_empty(), "{:?}", out.stopped);
    let meta = conn.metadata();
    assert_eq!(meta.version, Some(version));
    assert_eq!(meta.cipher_suite, Some(suite));
    assert_eq!(meta.sni(), Some("mcp.test"));
    assert_eq!(meta.offered_alpn(), ["h2", "http/1.1"]);
    assert_eq!(conn.negotiated_alpn(), Some("http/1.1"));
    assert!(!meta.ech());
    let info = meta.to_tls_info();
    assert_eq!(info.version.as_deref(), version.name());
    assert_eq!(info.alpn, vec!["http/1.1".to_string()]);
    let stats = conn.stats();
    assert_eq!(stats.issues().count(), 0, "{:?}", conn.issues());
    assert_eq!(
        stats.plaintext_bytes as usize,
        out.to_server.len() + out.to_client.len()
    );
    assert_eq!(stats.records_not_decrypted, 0);
    assert_eq!(stats.bytes_ignored, 0);

    // The same streams byte by byte, and all of the client's bytes before
    // any of the server's: the same plaintext.
    for chunk in [1, 7, usize::MAX] {
        let mut conn = TlsConnection::new(config(Some(keylog(case))));
        let again = run(&mut conn, &s, chunk);
        assert_eq!(again, out, "chunk {chunk}");
        assert_eq!(conn.negotiated_alpn(), Some("http/1.1"));
    }
}

#[test]
fn tls13_aes128_gcm() {
    decrypt_case("tls13_aes128", TlsVersion::TLS13, 0x1301);
}

#[test]
fn tls13_aes256_gcm() {
    decrypt_case("tls13_aes256", TlsVersion::TLS13, 0x1302);
}

#[test]
fn tls13_chacha20_poly1305() {
    decrypt_case("tls13_chacha", TlsVersion::TLS13, 0x1303);
}

#[test]
fn tls12_ecdhe_rsa_aes128_gcm() {
    decrypt_case("tls12_aes128", TlsVersion::TLS12, 0xc02f);
}

#[test]
fn tls12_ecdhe_rsa_aes256_gcm() {
    decrypt_case("tls12_aes256", TlsVersion::TLS12, 0xc030);
}

#[test]
fn tls12_ecdhe_rsa_chacha20_poly1305() {
    decrypt_case("tls12_chacha", TlsVersion::TLS12, 0xcca8);
}

#[test]
fn response_over_many_records() {
    let s = streams("tls13_big");
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_big"))));
    let out = run(&mut conn, &s, 1000);
    let resp = String::from_utf8(out.to_client).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(resp.ends_with("line 0900 of a long response body\nEND-OF-BIG-BODY\n"));
    assert_eq!(resp.matches(" of a long response body\n").count(), 900);
    assert!(conn.stats().records_decrypted > 4);
    assert_eq!(conn.stats().issues().count(), 0);
}

#[test]
fn cbc_suite_is_reported_unsupported() {
    let s = streams("tls12_cbc");
    let mut conn = TlsConnection::new(config(Some(keylog("tls12_cbc"))));
    let out = run_records(&mut conn, &s);
    assert!(out.to_server.is_empty() && out.to_client.is_empty());
    assert_eq!(
        out.stopped,
        vec![
            (Direction::ToServer, IssueKind::UnsupportedCipherSuite),
            (Direction::ToClient, IssueKind::UnsupportedCipherSuite)
        ]
    );
    assert_eq!(
        conn.stats().issue_count(IssueKind::UnsupportedCipherSuite),
        1
    );
    assert!(conn.stats().records_not_decrypted >= 4);
    // Metadata is still there.
    assert_eq!(conn.metadata().sni(), Some("mcp.test"));
    assert_eq!(conn.metadata().cipher_suite, Some(0xc027));
    assert_eq!(conn.negotiated_alpn(), Some("http/1.1"));
    assert!(conn.is_done());
}

#[test]
fn missing_keys_are_counted_and_metadata_kept() {
    for case in ["tls13_aes128", "tls12_aes128"] {
        let s = streams(case);
        for keys in [None, Some(Arc::new(KeyLog::default()))] {
            let mut conn = TlsConnection::new(config(keys));
            let out = run(&mut conn, &s, 100);
            assert!(out.to_server.is_empty() && out.to_client.is_empty());
            assert_eq!(out.stopped.len(), 2, "{case}");
            assert!(out
                .stopped
                .iter()
                .all(|&(_, r)| r == IssueKind::MissingKeys));
            assert_eq!(conn.stats().issue_count(IssueKind::MissingKeys), 1);
            assert!(conn.stats().records_not_decrypted > 0);
            assert_eq!(conn.metadata().sni(), Some("mcp.test"));
        }
    }
}

/// Flips one hex digit of the secrets with `label` in a key log.
fn corrupt(text: &str, label: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with(label) {
                let mut s = l.to_string();
                let last = s.pop().unwrap();
                s.push(if last == '0' { '1' } else { '0' });
                s
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn wrong_key_fails_authentication_and_stops_that_direction() {
    // TLS 1.3: a wrong server application secret; the handshake (and so the
    // ALPN) and the client's request still decrypt.
    let text = corrupt(&keylog_text("tls13_aes256"), "SERVER_TRAFFIC_SECRET_0");
    let keys = Arc::new(KeyLog::parse(&text).0);
    let s = streams("tls13_aes256");
    let mut conn = TlsConnection::new(config(Some(keys)));
    let out = run_records(&mut conn, &s);
    assert!(String::from_utf8_lossy(&out.to_server).starts_with("GET /mcp HTTP/1.1\r\n"));
    assert!(out.to_client.is_empty());
    assert_eq!(
        out.stopped,
        vec![(Direction::ToClient, IssueKind::AuthenticationFailed)]
    );
    assert_eq!(conn.stats().issue_count(IssueKind::AuthenticationFailed), 1);
    assert_eq!(conn.negotiated_alpn(), Some("http/1.1"));
    assert!(
        conn.stats().bytes_ignored > 0,
        "the rest of the direction is skipped"
    );

    // TLS 1.2: a wrong master secret fails the first encrypted record
    // (Finished) of both directions.
    let text = corrupt(&keylog_text("tls12_chacha"), "CLIENT_RANDOM");
    let keys = Arc::new(KeyLog::parse(&text).0);
    let mut conn = TlsConnection::new(config(Some(keys)));
    let out = run_records(&mut conn, &streams("tls12_chacha"));
    assert!(out.to_server.is_empty() && out.to_client.is_empty());
    assert_eq!(conn.stats().issue_count(IssueKind::AuthenticationFailed), 2);
    assert_eq!(conn.stats().records_decrypted, 0);
}

#[test]
fn tls13_with_only_application_secrets() {
    // Without handshake secrets the handshake records are skipped until
    // one opens with the application key; ALPN stays unknown.
    let text: String = keylog_text("tls13_chacha")
        .lines()
        .filter(|l| !l.contains("HANDSHAKE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let keys = Arc::new(KeyLog::parse(&text).0);
    let mut conn = TlsConnection::new(config(Some(keys)));
    let out = run_records(&mut conn, &streams("tls13_chacha"));
    assert_mcp_exchange(&out);
    assert_eq!(conn.negotiated_alpn(), None);
    assert!(conn.stats().records_not_decrypted > 0);
    assert_eq!(conn.stats().issues().count(), 0);
}

#[test]
fn keys_from_a_decryption_secrets_block() {
    let text = keylog_text("tls12_aes256");
    let mut block = Vec::new();
    let padded = text.len().div_ceil(4) * 4;
    let total = (16 + padded + 4) as u32;
    block.extend_from_slice(&0x0au32.to_le_bytes());
    block.extend_from_slice(&total.to_le_bytes());
    block.extend_from_slice(&DSB_TLS_KEY_LOG.to_le_bytes());
    block.extend_from_slice(&(text.len() as u32).to_le_bytes());
    block.extend_from_slice(text.as_bytes());
    block.resize(16 + padded, 0);
    block.extend_from_slice(&total.to_le_bytes());
    let mut log = KeyLog::default();
    assert!(log.add_decryption_secrets_block(&block).unwrap().is_empty());
    let mut conn = TlsConnection::new(config(Some(Arc::new(log))));
    assert_mcp_exchange(&run_records(&mut conn, &streams("tls12_aes256")));
}

#[test]
fn truncated_handshake() {
    let s = streams("tls13_aes128");
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_aes128"))));
    let mut events = Vec::new();
    // Half of the ClientHello, then the connection ends.
    let hello_len = 5 + u16::from_be_bytes([s.to_server[3], s.to_server[4]]) as usize;
    conn.on_data(
        Direction::ToServer,
        &s.to_server[..hello_len / 2],
        &mut events,
    );
    conn.finish(&mut events);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedHandshake), 1);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedRecord), 1);
    assert!(conn.metadata().client_hello.is_none());
    assert!(events.iter().all(|e| matches!(e, TlsEvent::Stopped { .. })));

    // The whole ClientHello but no answer.
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_aes128"))));
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, &s.to_server[..hello_len], &mut events);
    conn.finish(&mut events);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedHandshake), 1);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedRecord), 0);
    assert_eq!(conn.metadata().sni(), Some("mcp.test"));
}

#[test]
fn gap_stops_one_direction() {
    let s = streams("tls12_aes128");
    let mut conn = TlsConnection::new(config(Some(keylog("tls12_aes128"))));
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, &s.to_server, &mut events);
    conn.on_data(Direction::ToClient, &s.to_client[..200], &mut events);
    conn.on_gap(Direction::ToClient, 100, &mut events);
    conn.on_data(Direction::ToClient, &s.to_client[300..], &mut events);
    let out = collect(&events);
    assert_eq!(out.stopped, vec![(Direction::ToClient, IssueKind::Gap)]);
    assert!(out.to_client.is_empty());
    assert_eq!(conn.stats().issue_count(IssueKind::Gap), 1);
    // Everything after the gap, and the partial record before it.
    let ignored = conn.stats().bytes_ignored as usize;
    assert!(ignored > s.to_client.len() - 300 && ignored < s.to_client.len() - 100);
}

#[test]
fn midstream_pickup_has_no_client_random() {
    // Start both directions after the handshake.
    let s = streams("tls12_aes128");
    let mut conn = TlsConnection::new(config(Some(keylog("tls12_aes128"))));
    let mut events = Vec::new();
    let skip_records = |b: &[u8], n: usize| {
        let mut at = 0;
        for _ in 0..n {
            at += 5 + u16::from_be_bytes([b[at + 3], b[at + 4]]) as usize;
        }
        at
    };
    let c = skip_records(&s.to_server, 1);
    conn.on_data(Direction::ToServer, &s.to_server[c..], &mut events);
    conn.on_data(Direction::ToClient, &s.to_client, &mut events);
    conn.finish(&mut events);
    assert!(collect(&events).to_client.is_empty());
    assert_eq!(conn.stats().issue_count(IssueKind::NoClientHello), 1);
}

#[test]
fn tls13_key_updates_in_both_directions() {
    let s = streams("tls13_keyupdate");
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_keyupdate"))));
    let out = run_records(&mut conn, &s);
    assert_eq!(
        out.to_server,
        b"client before update\nclient after update\n"
    );
    assert_eq!(
        out.to_client,
        b"server before update\nserver after update\n"
    );
    assert!(out.stopped.is_empty(), "{:?}", out.stopped);
    // The client's KeyUpdate asks the server to update too.
    assert_eq!(conn.stats().key_updates, 2);
    assert_eq!(conn.stats().issues().count(), 0, "{:?}", conn.issues());
    assert_eq!(conn.negotiated_alpn(), None, "s_client offers no ALPN");
}

const EARLY_REQUEST: &str = "GET /early HTTP/1.1\r\nHost: mcp.test\r\n\r\n";

fn without(text: &str, label: &str) -> Arc<KeyLog> {
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(label))
        .map(|l| format!("{l}\n"))
        .collect();
    Arc::new(KeyLog::parse(&kept).0)
}

#[test]
fn tls13_early_data_accepted() {
    let s = streams("tls13_early_accepted");
    for chunk in [1, 50, usize::MAX] {
        let mut conn = TlsConnection::new(config(Some(keylog("tls13_early_accepted"))));
        let out = run(&mut conn, &s, chunk);
        let expected = format!("{EARLY_REQUEST}after handshake\n");
        assert_eq!(
            String::from_utf8_lossy(&out.to_server),
            expected,
            "chunk {chunk} {:?} {:?} {:?}",
            conn.stats(),
            conn.issues(),
            out.stopped
        );
        let meta = conn.metadata();
        let ch = meta.client_hello.as_ref().unwrap();
        assert!(ch.early_data && ch.pre_shared_key);
        assert!(meta.early_data_accepted);
        assert_eq!(conn.stats().issues().count(), 0, "{:?}", conn.issues());
        assert_eq!(conn.stats().early_data_rejected_records, 0);
    }
    // Without the early secret the 0-RTT request is skipped, the rest
    // decrypts.
    let keys = without(
        &keylog_text("tls13_early_accepted"),
        "CLIENT_EARLY_TRAFFIC_SECRET",
    );
    let mut conn = TlsConnection::new(config(Some(keys)));
    let out = run_records(&mut conn, &s);
    assert_eq!(out.to_server, b"after handshake\n");
    assert!(conn.stats().records_not_decrypted >= 1);
    assert!(out.stopped.is_empty());
}

#[test]
fn tls13_early_data_rejected_is_dropped() {
    let s = streams("tls13_early_rejected");
    for keys in [
        keylog("tls13_early_rejected"),
        without(
            &keylog_text("tls13_early_rejected"),
            "CLIENT_EARLY_TRAFFIC_SECRET",
        ),
    ] {
        for chunk in [1, 50, usize::MAX] {
            let mut conn = TlsConnection::new(config(Some(keys.clone())));
            let out = run(&mut conn, &s, chunk);
            // The server never saw the early request: neither do we.
            assert_eq!(out.to_server, b"after handshake\n", "chunk {chunk}");
            assert!(!conn.metadata().early_data_accepted);
            assert!(conn.metadata().client_hello.as_ref().unwrap().early_data);
            assert!(out.stopped.is_empty(), "{:?}", out.stopped);
            assert_eq!(conn.stats().issues().count(), 0, "{:?}", conn.issues());
        }
    }
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_early_rejected"))));
    run_records(&mut conn, &s);
    assert_eq!(conn.stats().early_data_rejected_records, 1);
}

mod splits {
    use super::*;
    use proptest::prelude::*;

    /// Feeds the client hello, then chunks of random sizes from a randomly
    /// chosen direction.
    fn feed_randomly(conn: &mut TlsConnection, s: &Streams, cuts: &[(bool, usize)]) -> Output {
        let mut events = Vec::new();
        let hello = 5 + u16::from_be_bytes([s.to_server[3], s.to_server[4]]) as usize;
        conn.on_data(Direction::ToServer, &s.to_server[..hello], &mut events);
        let (mut a, mut b) = (&s.to_server[hello..], &s.to_client[..]);
        let mut i = 0;
        while !a.is_empty() || !b.is_empty() {
            let (client_first, n) = cuts[i % cuts.len()];
            i += 1;
            let (dir, rest) = if (client_first && !a.is_empty()) || b.is_empty() {
                (Direction::ToServer, &mut a)
            } else {
                (Direction::ToClient, &mut b)
            };
            let n = n.min(rest.len());
            conn.on_data(dir, &rest[..n], &mut events);
            *rest = &rest[n..];
        }
        conn.finish(&mut events);
        collect(&events)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any split and any interleaving of the two directions (after the
        /// client hello) gives the same plaintext.
        #[test]
        fn any_split_any_interleaving(
            case in prop::sample::select(vec![
                "tls13_aes128", "tls13_chacha", "tls12_aes256", "tls12_chacha",
                "tls13_keyupdate", "tls13_early_accepted", "tls13_early_rejected",
                "tls12_renegotiation",
            ]),
            cuts in prop::collection::vec((any::<bool>(), 1usize..300), 1..40),
        ) {
            let s = streams(case);
            let mut reference = TlsConnection::new(config(Some(keylog(case))));
            let expected = run_records(&mut reference, &s);
            prop_assert!(!expected.to_server.is_empty());
            let mut conn = TlsConnection::new(config(Some(keylog(case))));
            let got = feed_randomly(&mut conn, &s, &cuts);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(conn.stats().issues().count(), 0);
        }
    }
}

#[test]
fn tls12_renegotiation_follows_the_new_keys() {
    let s = streams("tls12_renegotiation");
    for chunk in [1, 100, usize::MAX] {
        let mut conn = TlsConnection::new(config(Some(keylog("tls12_renegotiation"))));
        let out = run(&mut conn, &s, chunk);
        assert_eq!(
            out.to_server, b"client before\nclient after\n",
            "chunk {chunk}"
        );
        assert_eq!(out.to_client, b"server before\nserver after\n");
        assert_eq!(conn.stats().renegotiations, 1);
        assert_eq!(conn.stats().issues().count(), 0, "{:?}", conn.issues());
    }
    // Without the renegotiated handshake's master secret: plaintext up to
    // the renegotiation, then no more.
    let text = keylog_text("tls12_renegotiation");
    let first_only: String = text.lines().take(1).map(|l| format!("{l}\n")).collect();
    let mut conn = TlsConnection::new(config(Some(Arc::new(KeyLog::parse(&first_only).0))));
    let out = run_records(&mut conn, &s);
    assert_eq!(out.to_server, b"client before\n");
    assert_eq!(out.to_client, b"server before\n");
    assert_eq!(
        out.stopped,
        vec![
            (Direction::ToServer, IssueKind::MissingKeys),
            (Direction::ToClient, IssueKind::MissingKeys)
        ]
    );
    assert_eq!(conn.stats().issue_count(IssueKind::MissingKeys), 1);
}

/// Server stream with `[from, from + len)` lost, fed in `chunk`-byte pieces
/// after the client's whole stream.
fn run_with_hole(
    case: &str,
    from: usize,
    len: usize,
    chunk: usize,
    resync: bool,
) -> (Output, TlsConnection) {
    let s = streams(case);
    let mut conn = TlsConnection::new(shadowmcp_tls::TlsConfig {
        resync_after_gap: resync,
        ..config(Some(keylog(case)))
    });
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, &s.to_server, &mut events);
    for c in s.to_client[..from].chunks(chunk) {
        conn.on_data(Direction::ToClient, c, &mut events);
    }
    conn.on_gap(Direction::ToClient, len as u64, &mut events);
    for c in s.to_client[from + len..].chunks(chunk) {
        conn.on_data(Direction::ToClient, c, &mut events);
    }
    conn.finish(&mut events);
    let gaps = events
        .iter()
        .filter(|e| matches!(e, TlsEvent::Gap { .. }))
        .count();
    let mut out = collect(&events);
    // Mark where the Gap event came, to check prefix and suffix below.
    if gaps == 1 {
        out.stopped.push((Direction::ToClient, IssueKind::Gap));
    }
    (out, conn)
}

#[test]
fn decryption_goes_on_after_a_gap() {
    for case in ["tls13_big", "tls12_big", "tls12_chacha_big"] {
        let s = streams(case);
        let mut reference = TlsConnection::new(config(Some(keylog(case))));
        let full = run_records(&mut reference, &s).to_client;
        for (from, len, chunk) in [
            (s.to_client.len() / 2, 2500, usize::MAX),
            (9000, 1, 1),
            (12345, 5000, 700),
        ] {
            let (out, conn) = run_with_hole(case, from, len, chunk, true);
            assert_eq!(
                out.stopped,
                vec![(Direction::ToClient, IssueKind::Gap)],
                "{case} {from}"
            );
            assert_eq!(conn.stats().gaps_recovered, 1, "{case}");
            let got = out.to_client;
            assert!(
                got.len() < full.len() && got.len() > full.len() - len - 2100,
                "{case} {from}"
            );
            // What came is a prefix and a suffix of the full plaintext.
            let prefix = got.iter().zip(&full).take_while(|(a, b)| a == b).count();
            assert!(full.ends_with(&got[prefix..]), "{case} {from}");
            assert!(got.ends_with(b"END-OF-BIG-BODY\n"));
            assert_eq!(conn.stats().issue_count(IssueKind::AuthenticationFailed), 0);
        }
        // With recovery off, the direction stops at the gap.
        let (out, conn) = run_with_hole(case, 9000, 100, usize::MAX, false);
        assert_eq!(out.stopped, vec![(Direction::ToClient, IssueKind::Gap)]);
        assert_eq!(conn.stats().gaps_recovered, 0);
        assert!(!out.to_client.ends_with(b"END-OF-BIG-BODY\n"));
    }
}

#[test]
fn a_gap_in_the_handshake_stops_the_direction() {
    // Inside the encrypted certificate: the server direction stops, the
    // client's request still decrypts.
    let (out, conn) = run_with_hole("tls13_big", 400, 50, usize::MAX, true);
    assert!(out.to_client.is_empty());
    assert!(out.to_server.starts_with(b"GET /big HTTP/1.1\r\n"));
    assert_eq!(out.stopped, vec![(Direction::ToClient, IssueKind::Gap)]);
    assert_eq!(conn.stats().gaps_recovered, 0);
    // Inside the ServerHello: no keys for anyone.
    let (out, _) = run_with_hole("tls13_big", 100, 50, usize::MAX, true);
    assert!(out.to_server.is_empty() && out.to_client.is_empty());
    assert_eq!(
        out.stopped,
        vec![
            (Direction::ToClient, IssueKind::Gap),
            (Direction::ToServer, IssueKind::TruncatedHandshake)
        ]
    );
}

#[test]
fn garbage_after_a_gap_gives_up_within_the_window() {
    let s = streams("tls13_big");
    let mut conn = TlsConnection::new(config(Some(keylog("tls13_big"))));
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, &s.to_server, &mut events);
    conn.on_data(Direction::ToClient, &s.to_client[..10000], &mut events);
    conn.on_gap(Direction::ToClient, 10, &mut events);
    // Plausible-looking headers whose records never authenticate.
    let mut junk = Vec::new();
    while junk.len() < 60_000 {
        junk.extend_from_slice(&[23, 3, 3, 0, 40]);
        junk.extend_from_slice(&[0x5a; 40]);
    }
    conn.on_data(Direction::ToClient, &junk, &mut events);
    let out = collect(&events);
    assert_eq!(out.stopped, vec![(Direction::ToClient, IssueKind::Gap)]);
    assert_eq!(conn.stats().gaps_recovered, 0);
    assert!(conn.stats().bytes_ignored > 30_000);
}

mod gaps {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// A hole anywhere in the response, fed in any chunks: the
        /// plaintext is a prefix and a suffix of the full one, never wrong
        /// bytes, and decryption comes back unless the hole ate the end.
        #[test]
        fn hole_anywhere_in_the_response(
            case in prop::sample::select(vec!["tls13_big", "tls12_big", "tls12_chacha_big"]),
            from_frac in 0.1f64..0.9,
            len in 1usize..8000,
            chunk in 1usize..3000,
        ) {
            let total = streams(case).to_client.len();
            let from = 2000 + ((total - 12000) as f64 * from_frac) as usize;
            let mut reference = TlsConnection::new(config(Some(keylog(case))));
            let full = run_records(&mut reference, &streams(case)).to_client;
            let (out, conn) = run_with_hole(case, from, len, chunk, true);
            let got = out.to_client;
            let prefix = got.iter().zip(&full).take_while(|(a, b)| a == b).count();
            prop_assert!(full.ends_with(&got[prefix..]));
            prop_assert!(got.len() < full.len());
            prop_assert_eq!(conn.stats().gaps_recovered, 1);
            prop_assert!(got.ends_with(b"END-OF-BIG-BODY\n"));
        }
    }
}
