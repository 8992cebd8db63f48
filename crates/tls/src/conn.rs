//! One TLS connection: record layer, handshake reassembly, metadata and
//! decryption, fed with the two byte streams of a TCP connection.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use shadowmcp_exchange::TlsInfo;

use crate::crypto::{self, OpenError, RecordKey, Suite};
use crate::hello::{self, ClientHello, ServerHello, TlsVersion};
use crate::keylog::{KeyLog, Secret, SessionSecrets};

/// Largest record body accepted: TLS 1.2 ciphertext may reach 2^14 + 2048
/// (RFC 5246 §6.2.3); TLS 1.3 allows less. Anything longer is not TLS.
pub const MAX_RECORD_BODY: usize = 16384 + 2048;
const HEADER_LEN: usize = 5;

/// Record content types (RFC 8446 §5.1).
mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types (RFC 8446 §4).
mod hs {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const END_OF_EARLY_DATA: u8 = 5;
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    pub const FINISHED: u8 = 20;
    pub const KEY_UPDATE: u8 = 24;
}

/// Direction of bytes on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the TCP initiator) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    fn from_index(i: usize) -> Direction {
        if i == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

/// Limits and keys of a [`TlsConnection`].
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// Secrets to decrypt with. Default `None`: metadata only, every
    /// encrypted record is counted as not decrypted
    /// ([`IssueKind::MissingKeys`]).
    pub keylog: Option<Arc<KeyLog>>,
    /// Largest handshake message kept for parsing (ClientHello, ServerHello,
    /// EncryptedExtensions, KeyUpdate); larger ones are skipped and reported
    /// as [`IssueKind::HandshakeTooLarge`]. Messages that are not parsed
    /// (certificates, tickets) are skipped without being buffered, whatever
    /// their size. Default 64 KiB.
    pub max_handshake_message: usize,
    /// Encrypted client records kept while waiting for the server's hello
    /// (TLS 1.3 0-RTT data, a middlebox-compatibility ChangeCipherSpec, or
    /// streams fed out of order). Beyond it the client direction stops with
    /// [`IssueKind::PendingOverflow`]. Default 64 KiB.
    pub max_pending: usize,
    /// After a gap in a direction that is decrypting application data,
    /// look for the next record and go on ([`TlsEvent::Gap`]) instead of
    /// stopping. Default `true`.
    pub resync_after_gap: bool,
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            keylog: None,
            max_handshake_message: 64 * 1024,
            max_pending: 64 * 1024,
            resync_after_gap: true,
        }
    }
}

/// Why plaintext is missing or something was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssueKind {
    /// No key log, or no key-log entry for the connection's client random.
    MissingKeys,
    /// The key-log entry lacks a secret the connection needs, or holds one
    /// of the wrong size for the negotiated suite.
    IncompleteKeys,
    /// Encrypted records but no ClientHello seen (connection picked up
    /// mid-stream): the client random, and so the keys, are unknown.
    NoClientHello,
    /// A version this crate does not decrypt (SSL 3.0 to TLS 1.1).
    UnsupportedVersion,
    /// A cipher suite this crate does not decrypt (CBC, CCM, …).
    UnsupportedCipherSuite,
    /// A record failed authentication (wrong key, lost sync, tampering).
    /// Decryption of that direction stops.
    AuthenticationFailed,
    /// A record header that is not TLS (content type, version, length over
    /// [`MAX_RECORD_BODY`]); that direction stops.
    MalformedRecord,
    /// A hello or EncryptedExtensions message that did not parse, or
    /// decrypted content that makes no sense (no inner content type).
    MalformedHandshake,
    /// A record of a type that is not allowed where it came (application
    /// data before encryption starts, ChangeCipherSpec inside TLS 1.3
    /// encryption).
    UnexpectedRecord,
    /// A handshake message larger than [`TlsConfig::max_handshake_message`].
    HandshakeTooLarge,
    /// The connection ended before the ServerHello, or inside a handshake
    /// message.
    TruncatedHandshake,
    /// The connection ended inside a record.
    TruncatedRecord,
    /// Bytes were missing from a direction. Counted at each gap; decryption
    /// goes on after it when the record layer is found again
    /// ([`TlsEvent::Gap`]), else the direction stops with this reason.
    Gap,
    /// Too many client records waited for the server's hello.
    PendingOverflow,
    /// TLS 1.2: an encrypted ChangeCipherSpec without a renegotiated
    /// ServerHello before it, so no keys to switch to.
    Renegotiation,
}

impl IssueKind {
    /// Every kind, in declaration order.
    pub const ALL: [IssueKind; 15] = [
        IssueKind::MissingKeys,
        IssueKind::IncompleteKeys,
        IssueKind::NoClientHello,
        IssueKind::UnsupportedVersion,
        IssueKind::UnsupportedCipherSuite,
        IssueKind::AuthenticationFailed,
        IssueKind::MalformedRecord,
        IssueKind::MalformedHandshake,
        IssueKind::UnexpectedRecord,
        IssueKind::HandshakeTooLarge,
        IssueKind::TruncatedHandshake,
        IssueKind::TruncatedRecord,
        IssueKind::Gap,
        IssueKind::PendingOverflow,
        IssueKind::Renegotiation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::MissingKeys => "missing_keys",
            IssueKind::IncompleteKeys => "incomplete_keys",
            IssueKind::NoClientHello => "no_client_hello",
            IssueKind::UnsupportedVersion => "unsupported_version",
            IssueKind::UnsupportedCipherSuite => "unsupported_cipher_suite",
            IssueKind::AuthenticationFailed => "authentication_failed",
            IssueKind::MalformedRecord => "malformed_record",
            IssueKind::MalformedHandshake => "malformed_handshake",
            IssueKind::UnexpectedRecord => "unexpected_record",
            IssueKind::HandshakeTooLarge => "handshake_too_large",
            IssueKind::TruncatedHandshake => "truncated_handshake",
            IssueKind::TruncatedRecord => "truncated_record",
            IssueKind::Gap => "gap",
            IssueKind::PendingOverflow => "pending_overflow",
            IssueKind::Renegotiation => "renegotiation",
        }
    }

    fn index(self) -> usize {
        IssueKind::ALL
            .iter()
            .position(|&k| k == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for IssueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reported issue: what, and in which direction (`None` for the
/// connection as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issue {
    pub dir: Option<Direction>,
    pub kind: IssueKind,
}

/// Issues kept in detail per connection; all are counted in [`TlsStats`].
const MAX_ISSUES: usize = 16;

/// Counters of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// Bytes fed with [`TlsConnection::on_data`].
    pub bytes: u64,
    /// Complete records parsed.
    pub records: u64,
    /// Handshake messages seen (plaintext or decrypted).
    pub handshake_messages: u64,
    /// Records decrypted and authenticated.
    pub records_decrypted: u64,
    /// Encrypted records that were not decrypted (no keys, unsupported
    /// suite, rejected 0-RTT data, handshake records skipped without
    /// handshake secrets).
    pub records_not_decrypted: u64,
    /// Application-data plaintext bytes produced.
    pub plaintext_bytes: u64,
    /// TLS 1.2 renegotiations seen (encrypted ServerHellos).
    pub renegotiations: u64,
    /// Gaps after which decryption found the record layer again.
    pub gaps_recovered: u64,
    /// Bytes not parsed because their direction had stopped.
    pub bytes_ignored: u64,
    /// Alerts seen (plaintext or decrypted).
    pub alerts: u64,
    /// TLS 1.3 KeyUpdates followed.
    pub key_updates: u64,
    /// 0-RTT records dropped because the server rejected early data.
    pub early_data_rejected_records: u64,
    issues: [u64; IssueKind::ALL.len()],
}

impl TlsStats {
    /// How often `kind` happened.
    pub fn issue_count(&self, kind: IssueKind) -> u64 {
        self.issues.get(kind.index()).copied().unwrap_or_default()
    }

    /// Kinds that happened, with counts.
    pub fn issues(&self) -> impl Iterator<Item = (IssueKind, u64)> + '_ {
        IssueKind::ALL
            .iter()
            .map(|&k| (k, self.issue_count(k)))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds another connection's counters.
    pub fn merge(&mut self, other: &TlsStats) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.records = self.records.saturating_add(other.records);
        self.handshake_messages = self
            .handshake_messages
            .saturating_add(other.handshake_messages);
        self.records_decrypted = self
            .records_decrypted
            .saturating_add(other.records_decrypted);
        self.records_not_decrypted = self
            .records_not_decrypted
            .saturating_add(other.records_not_decrypted);
        self.plaintext_bytes = self.plaintext_bytes.saturating_add(other.plaintext_bytes);
        self.bytes_ignored = self.bytes_ignored.saturating_add(other.bytes_ignored);
        self.alerts = self.alerts.saturating_add(other.alerts);
        self.renegotiations = self.renegotiations.saturating_add(other.renegotiations);
        self.gaps_recovered = self.gaps_recovered.saturating_add(other.gaps_recovered);
        self.key_updates = self.key_updates.saturating_add(other.key_updates);
        self.early_data_rejected_records = self
            .early_data_rejected_records
            .saturating_add(other.early_data_rejected_records);
        for (a, b) in self.issues.iter_mut().zip(other.issues) {
            *a = a.saturating_add(b);
        }
    }
}

/// What the handshake revealed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsMeta {
    /// The first ClientHello.
    pub client_hello: Option<ClientHello>,
    /// The ServerHello (not a HelloRetryRequest).
    pub server_hello: Option<ServerHello>,
    /// The server asked for a second ClientHello.
    pub hello_retry_request: bool,
    /// The negotiated version (from the ServerHello or HelloRetryRequest).
    pub version: Option<TlsVersion>,
    /// The negotiated cipher suite.
    pub cipher_suite: Option<u16>,
    /// The negotiated ALPN protocol: from the ServerHello up to TLS 1.2,
    /// from the decrypted EncryptedExtensions in TLS 1.3 (so `None` there
    /// without handshake keys).
    pub alpn: Option<String>,
    /// TLS 1.3: the server accepted 0-RTT data (EncryptedExtensions).
    pub early_data_accepted: bool,
}

impl TlsMeta {
    /// Server name the client asked for (the public name under ECH).
    pub fn sni(&self) -> Option<&str> {
        self.client_hello.as_ref()?.sni.as_deref()
    }

    /// The client used Encrypted Client Hello.
    pub fn ech(&self) -> bool {
        self.client_hello.as_ref().is_some_and(|c| c.ech)
    }

    /// ALPN protocols the client offered.
    pub fn offered_alpn(&self) -> &[String] {
        self.client_hello
            .as_ref()
            .map(|c| c.alpn.as_slice())
            .unwrap_or_default()
    }

    /// The exchange-level summary. `alpn` holds the negotiated protocol
    /// when known, else the client's offer; `version` the negotiated
    /// version's name (`"TLSv1.3"`).
    pub fn to_tls_info(&self) -> TlsInfo {
        TlsInfo {
            sni: self.sni().map(str::to_owned),
            alpn: match &self.alpn {
                Some(p) => vec![p.clone()],
                None => self.offered_alpn().to_vec(),
            },
            version: self.version.map(|v| v.to_string()),
            ech: self.ech(),
        }
    }
}

/// Output of [`TlsConnection::on_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsEvent {
    /// Decrypted application data, in stream order for its direction.
    /// Consecutive chunks of one direction from one call are merged.
    Plaintext { dir: Direction, data: Vec<u8> },
    /// Plaintext of this direction is missing here (bytes were lost on the
    /// wire); decryption goes on after it when the record layer is found
    /// again, else a [`TlsEvent::Stopped`] follows.
    Gap { dir: Direction },
    /// No (more) plaintext will come in this direction. Sent once per
    /// direction.
    Stopped { dir: Direction, reason: IssueKind },
}

/// TLS 1.3 key schedule position of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// 0-RTT data under the client early traffic secret.
    Early,
    Handshake,
    Application,
    /// TLS 1.2: one key from ChangeCipherSpec on.
    Tls12,
}

#[derive(Debug)]
struct Decryptor {
    key: RecordKey,
    suite: Suite,
    phase: Phase,
    /// TLS 1.3: the secret `key` came from (for KeyUpdate).
    secret: Option<Secret>,
    /// TLS 1.3: the traffic secret that follows Finished.
    next_secret: Option<Secret>,
    /// Early phase: the handshake key that follows EndOfEarlyData, or that
    /// takes over when the server rejected 0-RTT.
    handshake_key: Option<RecordKey>,
    /// Authentication failures tolerated before the first success: 0-RTT
    /// records we have no key for, or handshake records skipped when only
    /// the application secret is known.
    tolerate: u32,
    /// Early phase: the server rejected 0-RTT, so records that open with
    /// the early key are dropped.
    drop_early: bool,
}

#[derive(Debug)]
enum Mode {
    /// Records are in the clear (before encryption starts).
    Plain,
    /// Records are encrypted and cannot be decrypted; counted only.
    Opaque,
    Decrypt(Box<Decryptor>),
    /// Parsing stopped (malformed stream, gap, failed authentication).
    Stopped,
}

/// Reassembles handshake messages across records; keeps only the bodies
/// this crate parses, and only up to the configured size.
#[derive(Debug, Default)]
struct HandshakeBuf {
    header: [u8; 4],
    header_len: usize,
    body: Vec<u8>,
    remaining: usize,
    keep: bool,
    too_large: bool,
}

struct HandshakeMsg {
    typ: u8,
    /// Present when the type is parsed here and it fit the cap.
    body: Option<Vec<u8>>,
    too_large: bool,
}

impl HandshakeBuf {
    fn in_message(&self) -> bool {
        self.header_len > 0
    }

    fn push(&mut self, mut data: &[u8], cap: usize, msgs: &mut Vec<HandshakeMsg>) {
        while !data.is_empty() {
            if self.header_len < 4 {
                let n = (4 - self.header_len).min(data.len());
                let (head, rest) = data.split_at(n);
                if let Some(dst) = self.header.get_mut(self.header_len..self.header_len + n) {
                    dst.copy_from_slice(head);
                }
                self.header_len += n;
                data = rest;
                if self.header_len < 4 {
                    return;
                }
                let [typ, a, b, c] = self.header;
                let len = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
                let wanted = matches!(
                    typ,
                    hs::CLIENT_HELLO | hs::SERVER_HELLO | hs::ENCRYPTED_EXTENSIONS | hs::KEY_UPDATE
                );
                self.too_large = wanted && len > cap;
                self.keep = wanted && !self.too_large;
                self.remaining = len;
                self.body.clear();
            }
            let n = self.remaining.min(data.len());
            let (chunk, rest) = data.split_at(n);
            if self.keep {
                self.body.extend_from_slice(chunk);
            }
            self.remaining -= n;
            data = rest;
            if self.remaining == 0 {
                msgs.push(HandshakeMsg {
                    typ: self.header[0],
                    body: self.keep.then(|| std::mem::take(&mut self.body)),
                    too_large: self.too_large,
                });
                self.header_len = 0;
                self.keep = false;
                self.too_large = false;
            }
        }
    }
}

#[derive(Debug)]
struct Side {
    /// A record being received: header and as much of the body as arrived.
    rec: Vec<u8>,
    hs: HandshakeBuf,
    mode: Mode,
    /// Records waiting for the server's hello (client side), or for the
    /// keys of a TLS 1.2 renegotiation.
    pending: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    stop_reported: bool,
    /// TLS 1.2: this side sent its renegotiation ChangeCipherSpec before
    /// the renegotiated ServerHello was parsed (streams fed out of order);
    /// its records wait for the new keys.
    awaiting_rekey: bool,
    /// After a gap: looking for the next record boundary.
    resync: Option<Box<Resync>>,
}

/// Finding the record layer again after lost bytes: bytes after the gap
/// are scanned for a record header whose record authenticates with the
/// sequence number advanced by a plausible count of lost records.
#[derive(Debug)]
struct Resync {
    /// Bytes lost so far: the gap, and partial-record bytes before it.
    lost: u64,
    /// Bytes received after the gap, not yet aligned.
    buf: Vec<u8>,
    /// Offsets of `buf` below this are known not to start a record.
    scanned: usize,
    /// Trial decryptions left: bounds the work hostile bytes after a gap
    /// can cause.
    tries_left: u64,
}

/// Bytes scanned after a gap for the next record: two records' worth.
const RESYNC_WINDOW: usize = 2 * (HEADER_LEN + MAX_RECORD_BODY);
/// Sequence numbers tried per candidate record.
const RESYNC_TRIES: u64 = 256;
/// Trial decryptions per gap, over all candidates.
const RESYNC_BUDGET: u64 = 4096;

impl Side {
    fn new() -> Side {
        Side {
            rec: Vec::new(),
            hs: HandshakeBuf::default(),
            mode: Mode::Plain,
            pending: VecDeque::new(),
            pending_bytes: 0,
            stop_reported: false,
            awaiting_rekey: false,
            resync: None,
        }
    }
}

/// Checks a record header; returns the body length.
fn record_body_len(h: &[u8]) -> Option<usize> {
    let [typ, major, minor, l0, l1] = <[u8; 5]>::try_from(h.get(..HEADER_LEN)?).ok()?;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let ok = (content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&typ)
        && major == 3
        && minor <= 4
        && len <= MAX_RECORD_BODY;
    ok.then_some(len)
}

/// One TLS connection, fed with both directions of its TCP stream.
///
/// Feed bytes with [`on_data`](Self::on_data) (any split), report lost
/// bytes with [`on_gap`](Self::on_gap) and the end with
/// [`finish`](Self::finish). The two directions may interleave in any way
/// once the ClientHello is in: records that need the other side's answer
/// (0-RTT data before the ServerHello, a renegotiation ChangeCipherSpec
/// before the renegotiated ServerHello) wait in a bounded queue, so the
/// plaintext does not depend on the interleaving. Memory is bounded by one
/// record per direction ([`MAX_RECORD_BODY`]),
/// [`TlsConfig::max_handshake_message`] per direction and
/// [`TlsConfig::max_pending`].
///
/// Events: [`TlsEvent::Plaintext`] chunks per direction, in order, ready
/// for an HTTP/1 or HTTP/2 parser (choose with
/// [`negotiated_alpn`](Self::negotiated_alpn)); one [`TlsEvent::Stopped`]
/// per direction when its plaintext ends early.
///
/// ```
/// use shadowmcp_tls::{Direction, TlsConfig, TlsConnection, TlsEvent};
/// // A ClientHello for "mcp.example.com" offering h2 (built by hand here).
/// let sni = b"mcp.example.com";
/// let mut exts = vec![0, 0, 0, sni.len() as u8 + 5, 0, sni.len() as u8 + 3, 0, 0, sni.len() as u8];
/// exts.extend_from_slice(sni);
/// exts.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
/// let mut body = vec![3, 3];
/// body.extend_from_slice(&[0x42; 32]); // client random
/// body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]); // no session id, one suite, null compression
/// body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
/// body.extend_from_slice(&exts);
/// let mut hello = vec![1, 0, 0, body.len() as u8];
/// hello.extend_from_slice(&body);
/// let mut record = vec![22, 3, 1, 0, hello.len() as u8];
/// record.extend_from_slice(&hello);
///
/// assert!(shadowmcp_tls::looks_like_tls_client_hello(&record));
/// let mut conn = TlsConnection::new(TlsConfig::default());
/// let mut events = Vec::new();
/// for byte in record.chunks(1) {
///     conn.on_data(Direction::ToServer, byte, &mut events);
/// }
/// let info = conn.metadata().to_tls_info();
/// assert_eq!(info.sni.as_deref(), Some("mcp.example.com"));
/// assert_eq!(info.alpn, vec!["h2".to_string()]);
/// assert!(events.is_empty());
/// ```
#[derive(Debug)]
pub struct TlsConnection {
    config: TlsConfig,
    meta: TlsMeta,
    stats: TlsStats,
    issues: Vec<Issue>,
    sides: [Side; 2],
    /// A ServerHello (not a HelloRetryRequest) was processed.
    server_hello_seen: bool,
    /// TLS 1.3 with 0-RTT offered: the client's waiting records are held
    /// until the server's EncryptedExtensions say whether the early data was
    /// accepted (rejected early data never reached the application).
    hold_client_records: bool,
    /// TLS 1.2: the keys each direction switches to at ChangeCipherSpec,
    /// or why there are none.
    tls12_keys: [Option<RecordKey>; 2],
    tls12_suite: Option<Suite>,
    tls12_unavailable: Option<IssueKind>,
    /// TLS 1.2 renegotiation: the client random of the encrypted
    /// ClientHello.
    renegotiation_random: Option<[u8; 32]>,
    /// TLS 1.2 renegotiation: random and suite of a renegotiated
    /// ServerHello parsed before the ClientHello it answers (streams fed
    /// out of order).
    renegotiation_server: Option<([u8; 32], u16)>,
    scratch: Vec<u8>,
}

impl TlsConnection {
    pub fn new(config: TlsConfig) -> TlsConnection {
        TlsConnection {
            config,
            meta: TlsMeta::default(),
            stats: TlsStats::default(),
            issues: Vec::new(),
            sides: [Side::new(), Side::new()],
            server_hello_seen: false,
            hold_client_records: false,
            tls12_keys: [None, None],
            tls12_suite: None,
            tls12_unavailable: None,
            renegotiation_random: None,
            renegotiation_server: None,
            scratch: Vec::new(),
        }
    }

    /// What the handshake revealed so far.
    pub fn metadata(&self) -> &TlsMeta {
        &self.meta
    }

    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    /// The first issues of this connection in order (at most 16; all are
    /// counted in [`TlsStats`]).
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The ALPN protocol the server selected (`"h2"`, `"http/1.1"`), once
    /// known: it is known before the first plaintext of either direction
    /// when the streams are fed in capture order.
    pub fn negotiated_alpn(&self) -> Option<&str> {
        self.meta.alpn.as_deref()
    }

    /// Both directions have stopped or can produce no plaintext: the
    /// caller may stop feeding data (metadata is complete too once the
    /// ServerHello was seen).
    pub fn is_done(&self) -> bool {
        self.sides
            .iter()
            .all(|s| matches!(s.mode, Mode::Stopped | Mode::Opaque))
    }

    /// Feeds bytes of one direction; decrypted plaintext and stop notices
    /// are appended to `out`.
    pub fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<TlsEvent>) {
        self.feed(dir.index(), data, out);
        if self.hold_client_records && !self.server_reads_handshake() {
            // The server's handshake stopped before EncryptedExtensions.
            self.release_client_records(out);
        }
    }

    fn feed(&mut self, d: usize, mut data: &[u8], out: &mut Vec<TlsEvent>) {
        self.stats.bytes = self.stats.bytes.saturating_add(data.len() as u64);
        if self.sides[d].resync.is_some() {
            self.resync(d, data, out);
            return;
        }
        while !data.is_empty() {
            if matches!(self.sides[d].mode, Mode::Stopped) {
                self.ignore(data.len());
                return;
            }
            let side = &mut self.sides[d];
            // Fast path: a whole record in `data`, nothing buffered.
            if side.rec.is_empty() && data.len() >= HEADER_LEN {
                let Some(len) = record_body_len(data) else {
                    self.stop(d, IssueKind::MalformedRecord, out);
                    continue;
                };
                if let Some(record) = data.get(..HEADER_LEN + len) {
                    data = data.get(HEADER_LEN + len..).unwrap_or_default();
                    self.process_record(d, record, out);
                    continue;
                }
            }
            // Slow path: accumulate the header, then the body.
            let want = if side.rec.len() < HEADER_LEN {
                HEADER_LEN
            } else {
                match record_body_len(&side.rec) {
                    Some(len) => HEADER_LEN + len,
                    None => {
                        self.stop(d, IssueKind::MalformedRecord, out);
                        continue;
                    }
                }
            };
            let n = want.saturating_sub(side.rec.len()).min(data.len());
            let (chunk, rest) = data.split_at(n);
            side.rec.extend_from_slice(chunk);
            data = rest;
            if side.rec.len() == HEADER_LEN && record_body_len(&side.rec).is_none() {
                self.stop(d, IssueKind::MalformedRecord, out);
                continue;
            }
            if side.rec.len() >= HEADER_LEN
                && record_body_len(&side.rec).map(|l| l + HEADER_LEN) == Some(side.rec.len())
            {
                let record = std::mem::take(&mut side.rec);
                self.process_record(d, &record, out);
                // Reuse the allocation unless the direction stopped.
                let side = &mut self.sides[d];
                if !matches!(side.mode, Mode::Stopped) && side.rec.is_empty() {
                    side.rec = record;
                    side.rec.clear();
                }
            }
        }
    }

    /// `len` bytes of `dir` are missing. When the direction is decrypting
    /// application data (and [`TlsConfig::resync_after_gap`]), a
    /// [`TlsEvent::Gap`] marks the hole and decryption goes on at the next
    /// record that authenticates; otherwise the direction stops.
    pub fn on_gap(&mut self, dir: Direction, len: u64, out: &mut Vec<TlsEvent>) {
        let d = dir.index();
        if matches!(self.sides[d].mode, Mode::Stopped) {
            return;
        }
        let side = &mut self.sides[d];
        let resumable = self.config.resync_after_gap
            && side.pending.is_empty()
            && !side.awaiting_rekey
            && matches!(&side.mode, Mode::Decrypt(dec)
                if matches!(dec.phase, Phase::Application | Phase::Tls12));
        if !resumable {
            self.stop(d, IssueKind::Gap, out);
            return;
        }
        self.issue(Some(dir), IssueKind::Gap);
        let side = &mut self.sides[d];
        let partial = std::mem::take(&mut side.rec).len() as u64;
        self.stats.bytes_ignored = self.stats.bytes_ignored.saturating_add(partial);
        side.hs = HandshakeBuf::default();
        match &mut side.resync {
            Some(r) => {
                // Another gap before the first: everything so far is lost.
                let dropped = r.buf.len() as u64;
                r.lost = r.lost.saturating_add(dropped).saturating_add(len);
                r.buf.clear();
                r.scanned = 0;
                self.stats.bytes_ignored = self.stats.bytes_ignored.saturating_add(dropped);
            }
            None => {
                side.resync = Some(Box::new(Resync {
                    lost: partial.saturating_add(len),
                    buf: Vec::new(),
                    scanned: 0,
                    tries_left: RESYNC_BUDGET,
                }));
                out.push(TlsEvent::Gap { dir });
            }
        }
    }

    /// Bytes after a gap: find a record that authenticates, then go on
    /// from it.
    fn resync(&mut self, d: usize, data: &[u8], out: &mut Vec<TlsEvent>) {
        let Some(mut r) = self.sides[d].resync.take() else {
            return;
        };
        r.buf.extend_from_slice(data);
        let found = self.find_record(d, &mut r);
        match found {
            Some(at) => {
                let skipped = at as u64;
                self.stats.bytes_ignored = self.stats.bytes_ignored.saturating_add(skipped);
                self.stats.gaps_recovered = self.stats.gaps_recovered.saturating_add(1);
                let rest = r.buf.split_off(at);
                // `feed` counts these bytes again: they were counted once.
                self.stats.bytes = self.stats.bytes.saturating_sub(rest.len() as u64);
                self.feed(d, &rest, out);
            }
            None if r.buf.len() > RESYNC_WINDOW || r.tries_left == 0 => {
                let dropped = r.buf.len() as u64;
                self.stats.bytes_ignored = self.stats.bytes_ignored.saturating_add(dropped);
                self.stop(d, IssueKind::Gap, out);
            }
            None => self.sides[d].resync = Some(r),
        }
    }

    /// The offset in `r.buf` of the first record that authenticates with a
    /// plausible sequence number (which is then set), or `None` when more
    /// bytes are needed.
    fn find_record(&mut self, d: usize, r: &mut Resync) -> Option<usize> {
        let Mode::Decrypt(dec) = &mut self.sides[d].mode else {
            return None;
        };
        let min_body = dec.key.min_record_body();
        let tls13 = dec.key.is_tls13();
        while r.scanned + HEADER_LEN <= r.buf.len() {
            let at = r.scanned;
            let header = r.buf.get(at..at + HEADER_LEN)?;
            let len = record_body_len(header).filter(|&l| l >= min_body);
            let typ = header.first().copied().unwrap_or_default();
            // Protected records: application data (TLS 1.3 hides the real
            // type), or in TLS 1.2 also alerts and handshake.
            let plausible = len.is_some()
                && header.get(1..3) == Some(&[3, 3][..])
                && (typ == content::APPLICATION_DATA
                    || (!tls13 && (typ == content::ALERT || typ == content::HANDSHAKE)));
            let Some(len) = len.filter(|_| plausible) else {
                r.scanned += 1;
                continue;
            };
            let Some(record) = r.buf.get(at..at + HEADER_LEN + len) else {
                // Wait for the whole candidate record.
                return None;
            };
            let Ok(hdr) = <[u8; 5]>::try_from(header) else {
                return None;
            };
            let body = record.get(HEADER_LEN..).unwrap_or_default();
            // Records lost: every byte lost or skipped belongs to one, and
            // each is between the smallest and the largest record size.
            let lost = r.lost.saturating_add(at as u64);
            let fewest = lost.div_ceil((HEADER_LEN + MAX_RECORD_BODY) as u64);
            let most = lost / (HEADER_LEN + min_body) as u64 + 1;
            let base = dec.key.seq();
            let explicit = dec.key.explicit_nonce(body).filter(|&n| n >= base);
            let candidates = explicit.into_iter().chain(
                (fewest..=most.min(fewest.saturating_add(RESYNC_TRIES)))
                    .map(|n| base.saturating_add(n)),
            );
            for seq in candidates {
                if r.tries_left == 0 {
                    dec.key.set_seq(base);
                    return None;
                }
                r.tries_left -= 1;
                dec.key.set_seq(seq);
                if dec.key.open(hdr, body, &mut self.scratch).is_ok() {
                    // Decrypt it again through the normal path.
                    dec.key.set_seq(seq);
                    return Some(at);
                }
            }
            dec.key.set_seq(base);
            r.scanned += 1;
        }
        None
    }

    /// The connection ended: reports a handshake or record cut short. Call
    /// once, after the last data.
    pub fn finish(&mut self, out: &mut Vec<TlsEvent>) {
        self.release_client_records(out);
        // Before the ServerHello, unless no side was TLS at all.
        let mut truncated_handshake = self.stats.bytes > 0
            && !self.server_hello_seen
            && self.sides.iter().any(|s| !matches!(s.mode, Mode::Stopped));
        for d in 0..2 {
            let side = &mut self.sides[d];
            if matches!(side.mode, Mode::Stopped) {
                continue;
            }
            truncated_handshake |= side.hs.in_message();
            if !side.rec.is_empty() {
                side.rec = Vec::new();
                self.issue(Some(Direction::from_index(d)), IssueKind::TruncatedRecord);
            }
            let waiting = std::mem::take(&mut self.sides[d].pending);
            self.stats.records_not_decrypted = self
                .stats
                .records_not_decrypted
                .saturating_add(waiting.len() as u64);
        }
        if truncated_handshake {
            self.issue(None, IssueKind::TruncatedHandshake);
            for d in 0..2 {
                if matches!(self.sides[d].mode, Mode::Plain) {
                    self.report_stop(d, IssueKind::TruncatedHandshake, out);
                }
            }
        }
    }

    fn ignore(&mut self, n: usize) {
        self.stats.bytes_ignored = self.stats.bytes_ignored.saturating_add(n as u64);
    }

    fn issue(&mut self, dir: Option<Direction>, kind: IssueKind) {
        if let Some(c) = self.stats.issues.get_mut(kind.index()) {
            *c = c.saturating_add(1);
        }
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(Issue { dir, kind });
        }
    }

    /// Sends the one stop notice of a direction.
    fn report_stop(&mut self, d: usize, reason: IssueKind, out: &mut Vec<TlsEvent>) {
        let side = &mut self.sides[d];
        if !side.stop_reported {
            side.stop_reported = true;
            out.push(TlsEvent::Stopped {
                dir: Direction::from_index(d),
                reason,
            });
        }
    }

    /// Stops parsing a direction for good, freeing its buffers.
    fn stop(&mut self, d: usize, kind: IssueKind, out: &mut Vec<TlsEvent>) {
        self.issue(Some(Direction::from_index(d)), kind);
        let side = &mut self.sides[d];
        // What was buffered is lost: partial record bytes count as ignored,
        // waiting records as not decrypted.
        self.stats.bytes_ignored = self
            .stats
            .bytes_ignored
            .saturating_add(side.rec.len() as u64);
        self.stats.records_not_decrypted = self
            .stats
            .records_not_decrypted
            .saturating_add(side.pending.len() as u64);
        side.mode = Mode::Stopped;
        side.rec = Vec::new();
        side.hs = HandshakeBuf::default();
        side.pending = VecDeque::new();
        side.pending_bytes = 0;
        self.report_stop(d, kind, out);
    }

    /// Encrypted from here on, but not decryptable.
    fn make_opaque(&mut self, d: usize, reason: IssueKind, out: &mut Vec<TlsEvent>) {
        self.sides[d].mode = Mode::Opaque;
        self.report_stop(d, reason, out);
    }

    fn version(&self) -> Option<TlsVersion> {
        self.meta.version
    }

    fn is_tls13(&self) -> bool {
        self.version() == Some(TlsVersion::TLS13)
    }

    fn process_record(&mut self, d: usize, record: &[u8], out: &mut Vec<TlsEvent>) {
        let Ok(header) = <[u8; 5]>::try_from(record.get(..HEADER_LEN).unwrap_or_default()) else {
            return;
        };
        let typ = header[0];
        let body = record.get(HEADER_LEN..).unwrap_or_default();
        if matches!(self.sides[d].mode, Mode::Stopped) {
            return;
        }
        let plain_mode = matches!(self.sides[d].mode, Mode::Plain);
        // Client records after the ClientHello that need the server's
        // choices (0-RTT data, ChangeCipherSpec) wait for its hello, and so
        // does everything after them, to keep the order; with 0-RTT offered
        // they wait for its EncryptedExtensions.
        let client = d == Direction::ToServer.index();
        let must_wait = self.sides[d].awaiting_rekey
            || (client
                && (self.hold_client_records
                    || (plain_mode
                        && !self.server_hello_seen
                        && (!self.sides[d].pending.is_empty()
                        || typ == content::APPLICATION_DATA
                        || typ == content::HEARTBEAT
                        // After a HelloRetryRequest a ChangeCipherSpec is
                        // the TLS 1.3 compatibility one: no need to wait.
                        || (typ == content::CHANGE_CIPHER_SPEC && !self.is_tls13())))));
        if must_wait {
            let side = &mut self.sides[d];
            if side.pending_bytes.saturating_add(record.len()) > self.config.max_pending {
                self.stop(d, IssueKind::PendingOverflow, out);
            } else {
                side.pending_bytes += record.len();
                side.pending.push_back(record.to_vec());
            }
            return;
        }
        self.stats.records = self.stats.records.saturating_add(1);
        // TLS 1.3 protects only application_data records; the others stay
        // in the clear (compatibility ChangeCipherSpec, early alerts).
        let protected = !plain_mode && (!self.is_tls13() || typ == content::APPLICATION_DATA);
        if protected {
            if matches!(self.sides[d].mode, Mode::Opaque) {
                self.stats.records_not_decrypted =
                    self.stats.records_not_decrypted.saturating_add(1);
            } else {
                self.decrypt(d, header, body, out);
            }
            return;
        }
        match typ {
            content::HANDSHAKE if plain_mode => self.handshake(d, body, out),
            content::HANDSHAKE => {
                // A plaintext handshake record after TLS 1.3 encryption began.
                self.issue(Some(Direction::from_index(d)), IssueKind::UnexpectedRecord);
            }
            content::CHANGE_CIPHER_SPEC => self.change_cipher_spec(d, out),
            content::ALERT => self.stats.alerts = self.stats.alerts.saturating_add(1),
            content::HEARTBEAT => {}
            _ => {
                // Application data in the clear: before any ServerHello
                // (not TLS as we know it) or before ChangeCipherSpec.
                self.stats.records_not_decrypted =
                    self.stats.records_not_decrypted.saturating_add(1);
                self.issue(Some(Direction::from_index(d)), IssueKind::UnexpectedRecord);
            }
        }
    }

    fn change_cipher_spec(&mut self, d: usize, out: &mut Vec<TlsEvent>) {
        if !matches!(self.sides[d].mode, Mode::Plain) || self.is_tls13() {
            // TLS 1.3 middlebox compatibility (RFC 8446 §D.4): ignored.
            return;
        }
        if !self.server_hello_seen {
            self.issue(Some(Direction::from_index(d)), IssueKind::UnexpectedRecord);
            return;
        }
        match (
            self.tls12_keys.get_mut(d).and_then(Option::take),
            self.tls12_suite,
        ) {
            (Some(key), Some(suite)) => {
                self.sides[d].mode = Mode::Decrypt(Box::new(Decryptor {
                    key,
                    suite,
                    phase: Phase::Tls12,
                    secret: None,
                    next_secret: None,
                    handshake_key: None,
                    tolerate: 0,
                    drop_early: false,
                }));
            }
            _ => {
                let reason = self.tls12_unavailable.unwrap_or(IssueKind::MissingKeys);
                self.make_opaque(d, reason, out);
            }
        }
    }

    fn handshake(&mut self, d: usize, data: &[u8], out: &mut Vec<TlsEvent>) {
        let mut msgs = Vec::new();
        let cap = self.config.max_handshake_message;
        self.sides[d].hs.push(data, cap, &mut msgs);
        let dir = Direction::from_index(d);
        for msg in msgs {
            self.stats.handshake_messages = self.stats.handshake_messages.saturating_add(1);
            if msg.too_large {
                self.issue(Some(dir), IssueKind::HandshakeTooLarge);
            }
            match (dir, msg.typ, msg.body) {
                (Direction::ToServer, hs::CLIENT_HELLO, Some(body)) => {
                    match hello::parse_client_hello(&body) {
                        Ok(ch) => {
                            // A second hello (after HelloRetryRequest, or a
                            // renegotiation) does not replace the first.
                            if self.meta.client_hello.is_none() {
                                self.meta.client_hello = Some(ch);
                            } else if self.server_hello_seen {
                                match self.renegotiation_server.take() {
                                    Some((random, suite)) => {
                                        self.prepare_tls12(Some(ch.random), random, suite);
                                        self.finish_rekey(out);
                                    }
                                    None => self.renegotiation_random = Some(ch.random),
                                }
                            }
                        }
                        Err(_) => self.issue(Some(dir), IssueKind::MalformedHandshake),
                    }
                }
                // A later ServerHello (TLS 1.2 renegotiation) is ignored.
                (Direction::ToClient, hs::SERVER_HELLO, Some(body)) if !self.server_hello_seen => {
                    match hello::parse_server_hello(&body) {
                        Ok(sh) => self.server_hello(sh, out),
                        Err(_) => self.issue(Some(dir), IssueKind::MalformedHandshake),
                    }
                }
                (Direction::ToClient, hs::SERVER_HELLO, Some(body)) if !self.is_tls13() => {
                    match hello::parse_server_hello(&body) {
                        Ok(sh) => {
                            self.stats.renegotiations = self.stats.renegotiations.saturating_add(1);
                            match self.renegotiation_random.take() {
                                Some(random) => {
                                    self.prepare_tls12(Some(random), sh.random, sh.cipher_suite);
                                    self.finish_rekey(out);
                                }
                                None => {
                                    self.renegotiation_server = Some((sh.random, sh.cipher_suite))
                                }
                            }
                        }
                        Err(_) => self.issue(Some(dir), IssueKind::MalformedHandshake),
                    }
                }
                (Direction::ToClient, hs::ENCRYPTED_EXTENSIONS, Some(body)) => {
                    match hello::parse_encrypted_extensions(&body) {
                        Ok(ee) => {
                            self.meta.alpn = ee.alpn;
                            self.meta.early_data_accepted = ee.early_data;
                            if !ee.early_data {
                                if let Mode::Decrypt(dec) =
                                    &mut self.sides[Direction::ToServer.index()].mode
                                {
                                    dec.drop_early = true;
                                }
                            }
                            self.release_client_records(out);
                        }
                        Err(_) => self.issue(Some(dir), IssueKind::MalformedHandshake),
                    }
                }
                (_, hs::FINISHED, _) => self.advance_tls13(d, Phase::Handshake, out),
                (Direction::ToServer, hs::END_OF_EARLY_DATA, _) => {
                    self.advance_tls13(d, Phase::Early, out)
                }
                (_, hs::KEY_UPDATE, Some(_)) => self.key_update(d, out),
                _ => {}
            }
        }
    }

    /// TLS 1.3: Finished moves a direction from handshake to application
    /// keys; EndOfEarlyData from early to handshake keys.
    fn advance_tls13(&mut self, d: usize, from: Phase, out: &mut Vec<TlsEvent>) {
        let Mode::Decrypt(dec) = &mut self.sides[d].mode else {
            return;
        };
        if dec.phase != from {
            return;
        }
        match from {
            Phase::Early => match dec.handshake_key.take() {
                Some(key) => {
                    dec.key = key;
                    dec.phase = Phase::Handshake;
                }
                None => {
                    self.issue(Some(Direction::from_index(d)), IssueKind::IncompleteKeys);
                    self.make_opaque(d, IssueKind::IncompleteKeys, out);
                }
            },
            _ => {
                let next = dec
                    .next_secret
                    .take()
                    .and_then(|s| Some((RecordKey::tls13(dec.suite, s.as_bytes())?, s)));
                match next {
                    Some((key, secret)) => {
                        dec.key = key;
                        dec.secret = Some(secret);
                        dec.phase = Phase::Application;
                    }
                    None => {
                        self.issue(Some(Direction::from_index(d)), IssueKind::IncompleteKeys);
                        self.make_opaque(d, IssueKind::IncompleteKeys, out);
                    }
                }
            }
        }
    }

    /// TLS 1.3 KeyUpdate: the sender's next records use the next secret.
    fn key_update(&mut self, d: usize, out: &mut Vec<TlsEvent>) {
        let Mode::Decrypt(dec) = &mut self.sides[d].mode else {
            return;
        };
        if dec.phase != Phase::Application {
            return;
        }
        let next = dec
            .secret
            .and_then(|s| RecordKey::next_tls13_secret(dec.suite, s.as_bytes()))
            .and_then(|s| Secret::new(&s))
            .and_then(|s| Some((RecordKey::tls13(dec.suite, s.as_bytes())?, s)));
        match next {
            Some((key, secret)) => {
                dec.key = key;
                dec.secret = Some(secret);
                self.stats.key_updates = self.stats.key_updates.saturating_add(1);
            }
            None => {
                // Only when the application secret was never known.
                self.issue(Some(Direction::from_index(d)), IssueKind::IncompleteKeys);
                self.make_opaque(d, IssueKind::IncompleteKeys, out);
            }
        }
    }

    fn server_hello(&mut self, sh: ServerHello, out: &mut Vec<TlsEvent>) {
        self.meta.version = Some(sh.version());
        self.meta.cipher_suite = Some(sh.cipher_suite);
        if sh.hello_retry_request {
            self.meta.hello_retry_request = true;
            return;
        }
        self.server_hello_seen = true;
        if sh.alpn.is_some() {
            self.meta.alpn.clone_from(&sh.alpn);
        }
        let server_random = sh.random;
        self.meta.server_hello = Some(sh);
        let version = self.meta.version.unwrap_or_default();
        if version == TlsVersion::TLS13 {
            match self.keys_for_connection(version) {
                Ok((suite, secrets)) => {
                    for d in 0..2 {
                        self.setup_tls13(d, suite, &secrets, out);
                    }
                }
                Err(reason) => {
                    for d in 0..2 {
                        self.make_opaque(d, reason, out);
                    }
                }
            }
        } else if version == TlsVersion::TLS12 {
            let client_random = self.meta.client_hello.as_ref().map(|c| c.random);
            self.prepare_tls12(
                client_random,
                server_random,
                self.meta.cipher_suite.unwrap_or(0),
            );
        } else {
            self.issue(None, IssueKind::UnsupportedVersion);
            self.tls12_unavailable = Some(IssueKind::UnsupportedVersion);
        }
        let offered_early = self
            .meta
            .client_hello
            .as_ref()
            .is_some_and(|c| c.early_data);
        self.hold_client_records = offered_early && self.server_reads_handshake();
        if !self.hold_client_records {
            self.replay_pending(out);
        }
    }

    /// The server direction decrypts its handshake: its EncryptedExtensions
    /// will be read.
    fn server_reads_handshake(&self) -> bool {
        matches!(&self.sides[Direction::ToClient.index()].mode,
            Mode::Decrypt(dec) if dec.phase == Phase::Handshake)
    }

    /// Replays the held client records once the server's choice about
    /// 0-RTT is known, or can no longer be learnt.
    fn release_client_records(&mut self, out: &mut Vec<TlsEvent>) {
        if self.hold_client_records {
            self.hold_client_records = false;
            self.replay_pending(out);
        }
    }

    /// TLS 1.2: derives the keys both directions switch to at their next
    /// ChangeCipherSpec (RFC 5246 §6.3), or records why there are none.
    fn prepare_tls12(
        &mut self,
        client_random: Option<[u8; 32]>,
        server_random: [u8; 32],
        suite_id: u16,
    ) {
        let result = (|| {
            let suite = crypto::suite(suite_id)
                .filter(|s| !s.tls13)
                .ok_or(IssueKind::UnsupportedCipherSuite)?;
            let random = client_random.ok_or(IssueKind::NoClientHello)?;
            let secrets = self
                .config
                .keylog
                .as_ref()
                .and_then(|k| k.lookup(&random))
                .ok_or(IssueKind::MissingKeys)?;
            let master = secrets.master_secret.ok_or(IssueKind::IncompleteKeys)?;
            let pair = RecordKey::tls12_pair(suite, master.as_bytes(), &random, &server_random)
                .ok_or(IssueKind::IncompleteKeys)?;
            Ok((suite, pair))
        })();
        match result {
            Ok((suite, (client, server))) => {
                self.tls12_keys = [Some(client), Some(server)];
                self.tls12_suite = Some(suite);
                self.tls12_unavailable = None;
            }
            Err(kind) => {
                self.issue(None, kind);
                self.tls12_keys = [None, None];
                self.tls12_unavailable = Some(kind);
            }
        }
    }

    /// After a renegotiated ServerHello: sides that already switched keys
    /// take them now and go on with their waiting records.
    fn finish_rekey(&mut self, out: &mut Vec<TlsEvent>) {
        for d in 0..2 {
            if std::mem::take(&mut self.sides[d].awaiting_rekey) {
                self.rekey_tls12(d, out);
                self.replay(d, out);
            }
        }
    }

    /// TLS 1.2 renegotiation: an encrypted ChangeCipherSpec switches the
    /// direction to the keys of the renegotiated handshake.
    fn rekey_tls12(&mut self, d: usize, out: &mut Vec<TlsEvent>) {
        let key = self.tls12_keys.get_mut(d).and_then(Option::take);
        match (key, self.tls12_suite, &mut self.sides[d].mode) {
            (Some(key), Some(suite), Mode::Decrypt(dec)) => {
                dec.key = key;
                dec.suite = suite;
            }
            // Renegotiation under way, its ServerHello not parsed yet.
            (None, _, Mode::Decrypt(_))
                if self.renegotiation_random.is_some() || self.renegotiation_server.is_some() =>
            {
                self.sides[d].awaiting_rekey = true;
            }
            _ => {
                let reason = match self.tls12_unavailable {
                    Some(reason) => reason,
                    None => {
                        // No renegotiated ServerHello was seen.
                        self.issue(Some(Direction::from_index(d)), IssueKind::Renegotiation);
                        IssueKind::Renegotiation
                    }
                };
                self.make_opaque(d, reason, out);
            }
        }
    }

    /// The suite and secrets to decrypt with, or why there are none (the
    /// issue is recorded here, once per connection).
    fn keys_for_connection(
        &mut self,
        version: TlsVersion,
    ) -> Result<(Suite, SessionSecrets), IssueKind> {
        let result = (|| {
            if version != TlsVersion::TLS13 && version != TlsVersion::TLS12 {
                return Err(IssueKind::UnsupportedVersion);
            }
            let suite = self
                .meta
                .cipher_suite
                .and_then(crypto::suite)
                .filter(|s| s.tls13 == (version == TlsVersion::TLS13))
                .ok_or(IssueKind::UnsupportedCipherSuite)?;
            let random = self
                .meta
                .client_hello
                .as_ref()
                .map(|c| c.random)
                .ok_or(IssueKind::NoClientHello)?;
            let secrets = self
                .config
                .keylog
                .as_ref()
                .and_then(|k| k.lookup(&random))
                .cloned()
                .ok_or(IssueKind::MissingKeys)?;
            Ok((suite, secrets))
        })();
        if let Err(kind) = result {
            self.issue(None, kind);
        }
        result
    }

    fn setup_tls13(
        &mut self,
        d: usize,
        suite: Suite,
        secrets: &SessionSecrets,
        out: &mut Vec<TlsEvent>,
    ) {
        let client = d == Direction::ToServer.index();
        let (handshake, application) = if client {
            (
                secrets.client_handshake_traffic_secret,
                secrets.client_traffic_secret_0,
            )
        } else {
            (
                secrets.server_handshake_traffic_secret,
                secrets.server_traffic_secret_0,
            )
        };
        let key = |s: Option<Secret>| s.and_then(|s| RecordKey::tls13(suite, s.as_bytes()));
        let mut dec = match (key(handshake), key(application)) {
            (Some(k), _) => Decryptor {
                key: k,
                suite,
                phase: Phase::Handshake,
                secret: handshake,
                next_secret: application,
                handshake_key: None,
                tolerate: 0,
                drop_early: false,
            },
            // Without handshake secrets, skip the handshake records until
            // one opens with the application key.
            (None, Some(k)) => Decryptor {
                key: k,
                suite,
                phase: Phase::Application,
                secret: application,
                next_secret: None,
                handshake_key: None,
                tolerate: 16,
                drop_early: false,
            },
            (None, None) => {
                self.issue(Some(Direction::from_index(d)), IssueKind::IncompleteKeys);
                self.make_opaque(d, IssueKind::IncompleteKeys, out);
                return;
            }
        };
        let offered_early = self
            .meta
            .client_hello
            .as_ref()
            .is_some_and(|c| c.early_data);
        if client && offered_early && dec.phase == Phase::Handshake {
            match key(secrets.client_early_traffic_secret) {
                Some(early) => {
                    dec.handshake_key = Some(std::mem::replace(&mut dec.key, early));
                    dec.phase = Phase::Early;
                }
                // 0-RTT records we cannot read come before the handshake
                // records: skip them.
                None => dec.tolerate = 64,
            }
        }
        self.sides[d].mode = Mode::Decrypt(Box::new(dec));
    }

    fn replay_pending(&mut self, out: &mut Vec<TlsEvent>) {
        self.replay(Direction::ToServer.index(), out);
    }

    fn replay(&mut self, d: usize, out: &mut Vec<TlsEvent>) {
        let waiting = std::mem::take(&mut self.sides[d].pending);
        self.sides[d].pending_bytes = 0;
        for record in waiting {
            self.process_record(d, &record, out);
        }
    }

    fn decrypt(&mut self, d: usize, header: [u8; 5], body: &[u8], out: &mut Vec<TlsEvent>) {
        let Mode::Decrypt(dec) = &mut self.sides[d].mode else {
            return;
        };
        let mut result = dec.key.open(header, body, &mut self.scratch);
        if result.is_err() && dec.phase == Phase::Early {
            // The server rejected 0-RTT (or the early data ended without
            // EndOfEarlyData): the handshake key takes over.
            if let Some(mut hk) = dec.handshake_key.take() {
                match hk.open(header, body, &mut self.scratch) {
                    Ok(r) => {
                        dec.key = hk;
                        dec.phase = Phase::Handshake;
                        result = Ok(r);
                    }
                    Err(_) => dec.handshake_key = Some(hk),
                }
            }
        }
        if result.is_ok() && dec.phase == Phase::Early && dec.drop_early {
            self.stats.early_data_rejected_records =
                self.stats.early_data_rejected_records.saturating_add(1);
            return;
        }
        match result {
            Ok((inner, range)) => {
                dec.tolerate = 0;
                self.stats.records_decrypted = self.stats.records_decrypted.saturating_add(1);
                self.on_plaintext(d, inner, range, out);
            }
            Err(e) => {
                if dec.tolerate > 0 {
                    dec.tolerate -= 1;
                    self.stats.records_not_decrypted =
                        self.stats.records_not_decrypted.saturating_add(1);
                    return;
                }
                let kind = match e {
                    OpenError::Auth | OpenError::TooShort => IssueKind::AuthenticationFailed,
                    OpenError::NoContentType => IssueKind::MalformedHandshake,
                };
                self.stats.records_not_decrypted =
                    self.stats.records_not_decrypted.saturating_add(1);
                self.stop(d, kind, out);
            }
        }
    }

    fn on_plaintext(
        &mut self,
        d: usize,
        inner: u8,
        range: std::ops::Range<usize>,
        out: &mut Vec<TlsEvent>,
    ) {
        let dir = Direction::from_index(d);
        let scratch = std::mem::take(&mut self.scratch);
        let plain = scratch.get(range).unwrap_or_default();
        match inner {
            content::APPLICATION_DATA => {
                if !plain.is_empty() {
                    self.stats.plaintext_bytes = self
                        .stats
                        .plaintext_bytes
                        .saturating_add(plain.len() as u64);
                    match out.last_mut() {
                        Some(TlsEvent::Plaintext { dir: last, data }) if *last == dir => {
                            data.extend_from_slice(plain)
                        }
                        _ => out.push(TlsEvent::Plaintext {
                            dir,
                            data: plain.to_vec(),
                        }),
                    }
                }
            }
            content::HANDSHAKE => self.handshake(d, plain, out),
            content::ALERT => self.stats.alerts = self.stats.alerts.saturating_add(1),
            // An encrypted ChangeCipherSpec: TLS 1.2 renegotiation.
            content::CHANGE_CIPHER_SPEC if !self.is_tls13() => self.rekey_tls12(d, out),
            _ => self.issue(Some(dir), IssueKind::UnexpectedRecord),
        }
        self.scratch = scratch;
    }
}

/// Result of [`sniff_client_hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// The bytes start like a TLS handshake record holding a ClientHello.
    Yes,
    /// They cannot be one.
    No,
    /// Consistent so far; more bytes are needed to tell.
    NeedMore,
}

/// Checks the first bytes of a client stream, up to the ClientHello's
/// `legacy_version` (11 bytes): record type handshake, version 3.x, a
/// plausible length, handshake type ClientHello, a plausible hello length.
/// SSL 2.0-format hellos are not recognised.
pub fn sniff_client_hello(first: &[u8]) -> Sniff {
    let byte = |i: usize| first.get(i).copied();
    let checks: [(usize, &dyn Fn(u8) -> bool); 6] = [
        (0, &|b| b == content::HANDSHAKE),
        (1, &|b| b == 3),
        (2, &|b| b <= 4),
        (5, &|b| b == hs::CLIENT_HELLO),
        (9, &|b| b == 3),
        (10, &|b| b <= 4),
    ];
    let mut need_more = false;
    for (i, ok) in checks {
        match byte(i) {
            Some(b) if !ok(b) => return Sniff::No,
            None => need_more = true,
            _ => {}
        }
    }
    // Record length: at least the 4-byte handshake header.
    if let (Some(a), Some(b)) = (byte(3), byte(4)) {
        let len = usize::from(u16::from_be_bytes([a, b]));
        if !(4..=MAX_RECORD_BODY).contains(&len) {
            return Sniff::No;
        }
    }
    // Hello length: at least version, random, three length bytes and one
    // cipher suite (41 bytes).
    if let (Some(a), Some(b), Some(c)) = (byte(6), byte(7), byte(8)) {
        let len = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
        if len < 41 {
            return Sniff::No;
        }
    }
    if need_more {
        Sniff::NeedMore
    } else {
        Sniff::Yes
    }
}

/// `true` when the first bytes of a client stream are a TLS ClientHello
/// record as far as they go (at least 6 bytes are needed: record header and
/// handshake type). Cheap: looks at no more than 11 bytes.
pub fn looks_like_tls_client_hello(first: &[u8]) -> bool {
    match sniff_client_hello(first) {
        Sniff::Yes => true,
        Sniff::No => false,
        Sniff::NeedMore => first.len() >= 6,
    }
}
