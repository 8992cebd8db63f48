//! Handshake metadata without keys: real ClientHellos (curl's, from the
//! fixture captures) and hand-built ones for ECH, HelloRetryRequest and
//! malformed input.

mod common;

use common::*;
use proptest::prelude::*;
use shadowmcp_tls::{
    looks_like_tls_client_hello, sniff_client_hello, Direction, IssueKind, Sniff, TlsConfig,
    TlsConnection, TlsEvent, TlsVersion, HELLO_RETRY_REQUEST_RANDOM,
};

fn ext(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut v = typ.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn vec8(b: &[u8]) -> Vec<u8> {
    let mut v = vec![b.len() as u8];
    v.extend_from_slice(b);
    v
}

fn vec16(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn sni(name: &str) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend_from_slice(&vec16(name.as_bytes()));
    ext(0, &vec16(&entry))
}

fn alpn(protos: &[&str]) -> Vec<u8> {
    let list: Vec<u8> = protos.iter().flat_map(|p| vec8(p.as_bytes())).collect();
    ext(16, &vec16(&list))
}

fn client_hello_body(random: [u8; 32], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.extend_from_slice(&vec8(&[9; 32]));
    b.extend_from_slice(&vec16(&[0x13, 0x01, 0xc0, 0x2f]));
    b.extend_from_slice(&vec8(&[0]));
    b.extend_from_slice(&vec16(&exts.concat()));
    b
}

fn server_hello_body(random: [u8; 32], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.extend_from_slice(&vec8(&[9; 32]));
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    b.extend_from_slice(&vec16(&exts.concat()));
    b
}

fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

/// `payload` framed in records of `typ` with fragments of at most `max`.
fn records(typ: u8, payload: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for frag in payload.chunks(max) {
        out.extend_from_slice(&[typ, 3, 3]);
        out.extend_from_slice(&vec16(frag));
    }
    out
}

fn feed(conn: &mut TlsConnection, dir: Direction, data: &[u8]) -> Vec<TlsEvent> {
    let mut events = Vec::new();
    conn.on_data(dir, data, &mut events);
    events
}

fn first_record(stream: &[u8]) -> &[u8] {
    &stream[..5 + u16::from_be_bytes([stream[3], stream[4]]) as usize]
}

fn client_random_of(case: &str) -> [u8; 32] {
    let line = keylog_text(case);
    let hex = line
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let mut r = [0u8; 32];
    for (i, b) in r.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    r
}

#[test]
fn real_tls13_hellos() {
    let s = streams("tls13_aes128");
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(&mut conn, Direction::ToServer, first_record(&s.to_server));
    feed(&mut conn, Direction::ToClient, first_record(&s.to_client));
    let meta = conn.metadata();
    let ch = meta.client_hello.as_ref().unwrap();
    assert_eq!(ch.legacy_version, TlsVersion::TLS12);
    assert_eq!(
        ch.random,
        client_random_of("tls13_aes128"),
        "the key log's index"
    );
    assert_eq!(
        ch.session_id.len(),
        32,
        "middlebox compatibility session id"
    );
    assert!(ch.cipher_suites.contains(&0x1301));
    assert!(
        !ch.cipher_suites.contains(&0x1302),
        "curl --tls13-ciphers limits the offer"
    );
    assert_eq!(ch.supported_versions, vec![TlsVersion::TLS13]);
    assert!(
        ch.key_share_groups.as_ref().unwrap().contains(&0x001d),
        "x25519"
    );
    assert_eq!(ch.sni.as_deref(), Some("mcp.test"));
    assert_eq!(ch.alpn, ["h2", "http/1.1"]);
    assert!(!ch.ech && !ch.early_data);
    assert_eq!(ch.max_version(), TlsVersion::TLS13);
    for e in [0, 16, 43, 51] {
        assert!(ch.extensions.contains(&e), "extension {e}");
    }
    assert_eq!(ch.malformed_extensions, 0);
    let sh = meta.server_hello.as_ref().unwrap();
    assert_eq!(sh.selected_version, Some(TlsVersion::TLS13));
    assert_eq!(sh.legacy_version, TlsVersion::TLS12);
    assert_eq!(sh.cipher_suite, 0x1301);
    assert_eq!(sh.key_share_group, Some(0x001d));
    assert!(!sh.hello_retry_request && !meta.hello_retry_request);
    assert_eq!(sh.alpn, None, "TLS 1.3 sends ALPN encrypted");
    assert_eq!(
        meta.to_tls_info().alpn,
        ["h2", "http/1.1"],
        "the offer, without keys"
    );
    assert_eq!(meta.to_tls_info().version.as_deref(), Some("TLSv1.3"));
}

#[test]
fn real_tls12_server_hello_carries_alpn() {
    let s = streams("tls12_chacha");
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(&mut conn, Direction::ToServer, first_record(&s.to_server));
    feed(&mut conn, Direction::ToClient, first_record(&s.to_client));
    let sh = conn.metadata().server_hello.as_ref().unwrap();
    assert_eq!(sh.version(), TlsVersion::TLS12);
    assert_eq!(sh.selected_version, None);
    assert_eq!(sh.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(conn.negotiated_alpn(), Some("http/1.1"));
    assert_eq!(
        shadowmcp_tls::cipher_suite_name(sh.cipher_suite),
        Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
    );
}

#[test]
fn client_hello_split_byte_by_byte_and_across_records() {
    let s = streams("tls13_chacha");
    let record = first_record(&s.to_server);
    let mut whole = TlsConnection::new(TlsConfig::default());
    feed(&mut whole, Direction::ToServer, record);
    let expected = whole.metadata().client_hello.clone().unwrap();
    // Byte by byte.
    let mut conn = TlsConnection::new(TlsConfig::default());
    for b in record {
        assert!(feed(&mut conn, Direction::ToServer, &[*b]).is_empty());
    }
    assert_eq!(conn.metadata().client_hello.as_ref(), Some(&expected));
    // The handshake message spread over records of 1 to 7 bytes, fed byte by
    // byte.
    for max in 1..=7 {
        let framed = records(22, &record[5..], max);
        let mut conn = TlsConnection::new(TlsConfig::default());
        for b in &framed {
            feed(&mut conn, Direction::ToServer, &[*b]);
        }
        assert_eq!(
            conn.metadata().client_hello.as_ref(),
            Some(&expected),
            "fragments of {max}"
        );
        assert_eq!(
            conn.stats().records as usize,
            record.len().saturating_sub(5).div_ceil(max)
        );
        assert_eq!(conn.stats().handshake_messages, 1);
    }
}

#[test]
fn encrypted_client_hello_keeps_the_outer_name() {
    let body = client_hello_body(
        [1; 32],
        &[
            sni("public.example.com"),
            alpn(&["h2"]),
            ext(0xfe0d, &[0, 0, 1, 0, 1, 7, 0, 0]),
        ],
    );
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    let meta = conn.metadata();
    assert!(meta.ech());
    assert_eq!(meta.sni(), Some("public.example.com"));
    let info = meta.to_tls_info();
    assert!(info.ech);
    assert_eq!(info.sni.as_deref(), Some("public.example.com"));
    // Without the extension, no ECH.
    let body = client_hello_body([1; 32], &[sni("a.example")]);
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    assert!(!conn.metadata().ech());
}

#[test]
fn hello_retry_request_then_server_hello() {
    let versions = ext(43, &[0x03, 0x04]);
    let ch1 = client_hello_body(
        [5; 32],
        &[
            sni("mcp.example"),
            alpn(&["h2"]),
            ext(43, &vec8(&[3, 4, 3, 3])),
        ],
    );
    let ch2 = client_hello_body([5; 32], &[sni("mcp.example"), alpn(&["other"])]);
    let hrr = server_hello_body(
        HELLO_RETRY_REQUEST_RANDOM,
        0x1301,
        &[versions.clone(), ext(51, &[0, 0x17])],
    );
    let sh = server_hello_body([6; 32], 0x1301, &[versions, ext(51, &[0, 0x1d, 0, 1, 0])]);
    let mut conn = TlsConnection::new(TlsConfig::default());
    let mut events = Vec::new();
    conn.on_data(
        Direction::ToServer,
        &records(22, &handshake(1, &ch1), 16384),
        &mut events,
    );
    conn.on_data(
        Direction::ToClient,
        &records(22, &handshake(2, &hrr), 16384),
        &mut events,
    );
    assert!(conn.metadata().hello_retry_request);
    assert!(conn.metadata().server_hello.is_none());
    assert_eq!(conn.metadata().version, Some(TlsVersion::TLS13));
    // Compatibility ChangeCipherSpec, then the second hello.
    conn.on_data(Direction::ToServer, &[20, 3, 3, 0, 1, 1], &mut events);
    conn.on_data(
        Direction::ToServer,
        &records(22, &handshake(1, &ch2), 16384),
        &mut events,
    );
    conn.on_data(
        Direction::ToClient,
        &records(22, &handshake(2, &sh), 16384),
        &mut events,
    );
    let meta = conn.metadata();
    assert_eq!(meta.offered_alpn(), ["h2"], "the first hello is kept");
    assert_eq!(meta.server_hello.as_ref().unwrap().random, [6; 32]);
    assert_eq!(
        meta.server_hello.as_ref().unwrap().key_share_group,
        Some(0x1d)
    );
    assert_eq!(conn.stats().issue_count(IssueKind::MissingKeys), 1);
    assert_eq!(conn.stats().issue_count(IssueKind::UnexpectedRecord), 0);
    assert_eq!(
        events,
        vec![
            TlsEvent::Stopped {
                dir: Direction::ToServer,
                reason: IssueKind::MissingKeys
            },
            TlsEvent::Stopped {
                dir: Direction::ToClient,
                reason: IssueKind::MissingKeys
            },
        ]
    );
}

#[test]
fn malformed_lengths() {
    // Extensions block longer than the hello.
    let mut body = client_hello_body([1; 32], &[sni("x.example")]);
    let n = body.len();
    let ext_len_at = n - sni("x.example").len() - 2;
    body[ext_len_at] = 0xff;
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    assert!(conn.metadata().client_hello.is_none());
    assert_eq!(conn.stats().issue_count(IssueKind::MalformedHandshake), 1);

    // A broken server_name extension is skipped; the rest is kept.
    let bad_sni = ext(0, &[0, 200, 0, 0, 1, b'x']);
    let body = client_hello_body([1; 32], &[bad_sni, alpn(&["h2"])]);
    let mut conn = TlsConnection::new(TlsConfig::default());
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    let ch = conn.metadata().client_hello.as_ref().unwrap();
    assert_eq!((ch.sni.as_deref(), ch.malformed_extensions), (None, 1));
    assert_eq!(ch.alpn, ["h2"]);

    // Session id longer than 32, odd cipher-suite vector.
    for patch in [(34usize, 33u8), (67, 3)] {
        let mut body = client_hello_body([1; 32], &[]);
        body[patch.0] = patch.1;
        let mut conn = TlsConnection::new(TlsConfig::default());
        feed(
            &mut conn,
            Direction::ToServer,
            &records(22, &handshake(1, &body), 16384),
        );
        assert!(conn.metadata().client_hello.is_none());
        assert_eq!(
            conn.stats().issue_count(IssueKind::MalformedHandshake),
            1,
            "{patch:?}"
        );
    }

    // A record longer than TLS allows: the direction stops.
    let mut conn = TlsConnection::new(TlsConfig::default());
    let events = feed(
        &mut conn,
        Direction::ToServer,
        &[22, 3, 1, 0xff, 0xff, 1, 2, 3],
    );
    assert_eq!(
        events,
        vec![TlsEvent::Stopped {
            dir: Direction::ToServer,
            reason: IssueKind::MalformedRecord
        }]
    );
    assert_eq!(conn.stats().bytes_ignored, 8);
    feed(&mut conn, Direction::ToServer, &[0; 100]);
    assert_eq!(conn.stats().bytes_ignored, 108);
    // Not TLS at all (bad content type), split in the header.
    let mut conn = TlsConnection::new(TlsConfig::default());
    assert!(feed(&mut conn, Direction::ToClient, b"HT").is_empty());
    assert_eq!(
        feed(&mut conn, Direction::ToClient, b"TP/1.1 200 OK").len(),
        1
    );
    assert_eq!(conn.stats().issue_count(IssueKind::MalformedRecord), 1);
}

#[test]
fn oversized_handshake_message_is_skipped_not_buffered() {
    let config = TlsConfig {
        max_handshake_message: 1000,
        ..TlsConfig::default()
    };
    let mut conn = TlsConnection::new(config);
    // A ClientHello announcing 0xffffff bytes, followed by 200 KB of it.
    let mut msg = vec![1, 0xff, 0xff, 0xff];
    msg.extend(std::iter::repeat(0u8).take(200_000));
    feed(&mut conn, Direction::ToServer, &records(22, &msg, 16384));
    assert_eq!(conn.stats().records, 13);
    assert_eq!(
        conn.stats().handshake_messages,
        0,
        "still inside the message"
    );
    let mut events = Vec::new();
    conn.finish(&mut events);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedHandshake), 1);
    // A complete message over the cap is reported as too large.
    let body = client_hello_body([1; 32], &[ext(0xff01, &[0; 1200])]);
    let mut conn = TlsConnection::new(TlsConfig {
        max_handshake_message: 1000,
        ..TlsConfig::default()
    });
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    assert_eq!(conn.stats().issue_count(IssueKind::HandshakeTooLarge), 1);
    assert!(conn.metadata().client_hello.is_none());
}

#[test]
fn pending_client_records_are_capped() {
    let config = TlsConfig {
        max_pending: 100,
        ..TlsConfig::default()
    };
    let mut conn = TlsConnection::new(config);
    let body = client_hello_body([1; 32], &[sni("a.example"), ext(42, &[])]);
    feed(
        &mut conn,
        Direction::ToServer,
        &records(22, &handshake(1, &body), 16384),
    );
    // 0-RTT records before any server hello wait, up to the cap.
    let early = records(23, &[0xaa; 60], 60);
    assert!(feed(&mut conn, Direction::ToServer, &early).is_empty());
    let events = feed(&mut conn, Direction::ToServer, &early);
    assert_eq!(
        events,
        vec![TlsEvent::Stopped {
            dir: Direction::ToServer,
            reason: IssueKind::PendingOverflow
        }]
    );
}

#[test]
fn sniffing() {
    let s = streams("tls12_aes128");
    assert_eq!(sniff_client_hello(&s.to_server), Sniff::Yes);
    assert!(looks_like_tls_client_hello(&s.to_server[..6]));
    assert!(looks_like_tls_client_hello(&s.to_server[..11]));
    assert_eq!(sniff_client_hello(&s.to_server[..3]), Sniff::NeedMore);
    assert!(!looks_like_tls_client_hello(&s.to_server[..3]));
    assert!(!looks_like_tls_client_hello(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_tls_client_hello(b"PRI * HTTP/2.0\r\n"));
    // The server's first record is a ServerHello, not a ClientHello.
    assert_eq!(sniff_client_hello(&s.to_client), Sniff::No);
    // Record length too small for a handshake header; hello too short.
    assert_eq!(sniff_client_hello(&[22, 3, 1, 0, 2, 1]), Sniff::No);
    assert_eq!(
        sniff_client_hello(&[22, 3, 1, 0, 50, 1, 0, 0, 20, 3, 3]),
        Sniff::No
    );
    // SSL 2.0-format hello.
    assert_eq!(sniff_client_hello(&[0x80, 0x2e, 1, 3, 1]), Sniff::No);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Arbitrary bytes, split anywhere: never a panic, and the outcome does
    /// not depend on the split.
    #[test]
    fn arbitrary_input_any_split(
        client in proptest::collection::vec(any::<u8>(), 0..600),
        server in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(1usize..50, 1..20),
        tls_prefix in any::<bool>(),
    ) {
        let mut client = client;
        if tls_prefix {
            // Make the garbage start like a ClientHello record so that the
            // hello parser sees it.
            let len = client.len() as u16;
            let mut head = vec![22, 3, 1];
            head.extend_from_slice(&len.saturating_add(4).to_be_bytes());
            head.extend_from_slice(&[1, 0, (len >> 8) as u8, len as u8]);
            head.extend_from_slice(&client);
            client = head;
        }
        let whole = {
            let mut conn = TlsConnection::new(TlsConfig::default());
            let mut ev = Vec::new();
            conn.on_data(Direction::ToServer, &client, &mut ev);
            conn.on_data(Direction::ToClient, &server, &mut ev);
            conn.finish(&mut ev);
            (collect(&ev), conn.metadata().clone(), conn.stats().clone())
        };
        let split = {
            let mut conn = TlsConnection::new(TlsConfig::default());
            let mut ev = Vec::new();
            for (dir, data) in [(Direction::ToServer, &client), (Direction::ToClient, &server)] {
                let mut rest = &data[..];
                let mut i = 0;
                while !rest.is_empty() {
                    let n = cuts[i % cuts.len()].min(rest.len());
                    conn.on_data(dir, &rest[..n], &mut ev);
                    rest = &rest[n..];
                    i += 1;
                }
            }
            conn.finish(&mut ev);
            (collect(&ev), conn.metadata().clone(), conn.stats().clone())
        };
        prop_assert_eq!(whole, split);
    }

    /// A real ClientHello with a byte changed: never a panic.
    #[test]
    fn mutated_real_client_hello(at in 0usize..600, value in any::<u8>()) {
        let s = streams("tls13_aes128");
        let mut record = first_record(&s.to_server).to_vec();
        let at = at % record.len();
        record[at] = value;
        let mut conn = TlsConnection::new(TlsConfig::default());
        let mut ev = Vec::new();
        conn.on_data(Direction::ToServer, &record, &mut ev);
        conn.on_data(Direction::ToClient, &s.to_client, &mut ev);
        conn.finish(&mut ev);
        prop_assert!(conn.stats().bytes as usize == record.len() + s.to_client.len());
    }
}

#[test]
fn not_tls_is_not_a_truncated_handshake() {
    let mut conn = TlsConnection::new(TlsConfig::default());
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n", &mut events);
    conn.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\n\r\n", &mut events);
    conn.finish(&mut events);
    assert_eq!(conn.stats().issue_count(IssueKind::MalformedRecord), 2);
    assert_eq!(conn.stats().issue_count(IssueKind::TruncatedHandshake), 0);
    assert!(conn.is_done());
    assert_eq!(events.len(), 2);
}
