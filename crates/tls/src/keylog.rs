//! NSS key log files (`SSLKEYLOGFILE`), as written by Firefox, Chrome, curl,
//! OpenSSL, rustls, Python and Go, and the same text carried in a pcapng
//! Decryption Secrets Block.
//!
//! Each line is `<LABEL> <client_random hex> <secret hex>`; `#` starts a
//! comment line. Secrets are indexed by the 32-byte client random of the
//! connection they belong to.

use std::collections::HashMap;
use std::fmt;

/// `secrets_type` of a Decryption Secrets Block holding an NSS key log
/// (pcapng spec: "TLSK").
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;

/// pcapng block type of a Decryption Secrets Block.
const DSB_BLOCK_TYPE: u32 = 0x0000_000a;

/// One secret from a key log: 32 or 48 bytes (SHA-256 or SHA-384 sized; the
/// TLS 1.2 master secret is always 48).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    len: u8,
    bytes: [u8; 48],
}

impl Secret {
    /// `None` unless `bytes` is 32 or 48 bytes long.
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        if bytes.len() != 32 && bytes.len() != 48 {
            return None;
        }
        let mut s = Secret {
            len: bytes.len() as u8,
            bytes: [0; 48],
        };
        s.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(s)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl fmt::Debug for Secret {
    /// Secrets never appear in logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.len)
    }
}

/// The secrets a key log holds for one connection (one client random).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    /// `CLIENT_RANDOM`: the TLS 1.2 (and earlier) master secret.
    pub master_secret: Option<Secret>,
    /// `CLIENT_EARLY_TRAFFIC_SECRET` (also accepted as `EARLY_TRAFFIC_SECRET`).
    pub client_early_traffic_secret: Option<Secret>,
    pub client_handshake_traffic_secret: Option<Secret>,
    pub server_handshake_traffic_secret: Option<Secret>,
    pub client_traffic_secret_0: Option<Secret>,
    pub server_traffic_secret_0: Option<Secret>,
    pub exporter_secret: Option<Secret>,
    pub early_exporter_secret: Option<Secret>,
}

/// Why a key log line was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyLogErrorKind {
    /// Not three space-separated fields.
    BadFormat,
    /// A label this crate does not know or cannot use (`RSA`: the
    /// pre-master secret of RSA key exchange, indexed by ciphertext rather
    /// than client random). Lines with `ECH_SECRET`, `ECH_CONFIG` and
    /// OpenSSL's `*_TRAFFIC_SECRET_N` are accepted and ignored instead.
    UnknownLabel,
    /// The client random is not 64 hex digits.
    BadClientRandom,
    /// The secret is not hex, or not of a length the label allows.
    BadSecret,
    /// The line is not valid UTF-8 (only from [`KeyLog::parse_bytes`]).
    NotUtf8,
    /// The key log already holds [`KeyLogConfig::max_entries`] connections.
    TooManyEntries,
}

impl KeyLogErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyLogErrorKind::BadFormat => "bad_format",
            KeyLogErrorKind::UnknownLabel => "unknown_label",
            KeyLogErrorKind::BadClientRandom => "bad_client_random",
            KeyLogErrorKind::BadSecret => "bad_secret",
            KeyLogErrorKind::NotUtf8 => "not_utf8",
            KeyLogErrorKind::TooManyEntries => "too_many_entries",
        }
    }
}

/// A key log line that was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyLogError {
    /// 1-based line number in the text given.
    pub line: usize,
    pub kind: KeyLogErrorKind,
}

impl fmt::Display for KeyLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key log line {}: {}", self.line, self.kind.as_str())
    }
}

/// Limits of a [`KeyLog`].
#[derive(Clone, Debug)]
pub struct KeyLogConfig {
    /// Connections (client randoms) kept; lines for further connections are
    /// refused with [`KeyLogErrorKind::TooManyEntries`]. Default 1 000 000
    /// (about 400 MB at most).
    pub max_entries: usize,
}

impl Default for KeyLogConfig {
    fn default() -> KeyLogConfig {
        KeyLogConfig {
            max_entries: 1_000_000,
        }
    }
}

/// Why a Decryption Secrets Block could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsbError {
    /// Not a Decryption Secrets Block (block type is not 0x0000000A).
    NotDecryptionSecrets,
    /// The secrets are not a TLS key log (type given).
    UnsupportedSecretsType(u32),
    /// A length field points past the block.
    Truncated,
}

impl fmt::Display for DsbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DsbError::NotDecryptionSecrets => f.write_str("not a pcapng Decryption Secrets Block"),
            DsbError::UnsupportedSecretsType(t) => write!(f, "unsupported secrets type 0x{t:08x}"),
            DsbError::Truncated => f.write_str("truncated Decryption Secrets Block"),
        }
    }
}

impl std::error::Error for DsbError {}

/// Secrets of many connections, looked up by client random.
///
/// ```
/// use shadowmcp_tls::KeyLog;
/// let text = "# comment\n\
///     CLIENT_RANDOM 0101010101010101010101010101010101010101010101010101010101010101 \
///     000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n\
///     not a key line\n";
/// let (keys, errors) = KeyLog::parse(text);
/// assert_eq!(keys.len(), 1);
/// assert!(keys.lookup(&[1; 32]).unwrap().master_secret.is_some());
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors[0].line, 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    config: KeyLogConfig,
    entries: HashMap<[u8; 32], SessionSecrets>,
}

enum Label {
    ClientRandom,
    ClientEarly,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic0,
    ServerTraffic0,
    Exporter,
    EarlyExporter,
}

fn label(name: &str) -> Option<Label> {
    Some(match name {
        "CLIENT_RANDOM" => Label::ClientRandom,
        "CLIENT_EARLY_TRAFFIC_SECRET" | "EARLY_TRAFFIC_SECRET" => Label::ClientEarly,
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshake,
        "CLIENT_TRAFFIC_SECRET_0" => Label::ClientTraffic0,
        "SERVER_TRAFFIC_SECRET_0" => Label::ServerTraffic0,
        "EXPORTER_SECRET" => Label::Exporter,
        "EARLY_EXPORTER_SECRET" => Label::EarlyExporter,
        _ => return None,
    })
}

/// Decodes hex into `out`, returning the byte count; `None` on a non-hex
/// digit, an odd length or more than `out` holds.
fn hex_decode(s: &str, out: &mut [u8]) -> Option<usize> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 || s.len() / 2 > out.len() {
        return None;
    }
    for (pair, o) in s.chunks_exact(2).zip(out.iter_mut()) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(s.len() / 2)
}

impl KeyLog {
    /// An empty key log with the given limits.
    pub fn new(config: KeyLogConfig) -> KeyLog {
        KeyLog {
            config,
            entries: HashMap::new(),
        }
    }

    /// Parses key log text with default limits. Lines that cannot be used
    /// are returned with their line numbers; they never stop the parse.
    pub fn parse(text: &str) -> (KeyLog, Vec<KeyLogError>) {
        let mut log = KeyLog::default();
        let errors = log.add_text(text);
        (log, errors)
    }

    /// Like [`KeyLog::parse`] for bytes that may not all be UTF-8 (a
    /// Decryption Secrets Block, a file read raw): lines that are not
    /// UTF-8 are reported as [`KeyLogErrorKind::NotUtf8`].
    pub fn parse_bytes(bytes: &[u8]) -> (KeyLog, Vec<KeyLogError>) {
        let mut log = KeyLog::default();
        let errors = log.add_bytes(bytes);
        (log, errors)
    }

    /// The key log of one pcapng Decryption Secrets Block (the whole block,
    /// either byte order; see [`KeyLog::add_decryption_secrets_block`]).
    pub fn from_decryption_secrets_block(
        block: &[u8],
    ) -> Result<(KeyLog, Vec<KeyLogError>), DsbError> {
        let mut log = KeyLog::default();
        let errors = log.add_decryption_secrets_block(block)?;
        Ok((log, errors))
    }

    /// Adds the lines of `text`; returns the lines skipped (numbered from
    /// 1 within `text`).
    pub fn add_text(&mut self, text: &str) -> Vec<KeyLogError> {
        self.add_bytes(text.as_bytes())
    }

    /// Adds the lines of `bytes`; returns the lines skipped.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Vec<KeyLogError> {
        let mut errors = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i.saturating_add(1);
            let result = match std::str::from_utf8(raw) {
                Ok(text) => self.add_line(text),
                Err(_) => Err(KeyLogErrorKind::NotUtf8),
            };
            if let Err(kind) = result {
                errors.push(KeyLogError { line, kind });
            }
        }
        errors
    }

    /// Adds one line (without its newline). Blank lines and `#` comments
    /// are accepted and ignored.
    pub fn add_line(&mut self, line: &str) -> Result<(), KeyLogErrorKind> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(random_hex), Some(secret_hex), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(KeyLogErrorKind::BadFormat);
        };
        // Known labels whose secrets are not needed here: ECH secrets, and
        // the secrets after a KeyUpdate that OpenSSL logs (derived here
        // from the *_TRAFFIC_SECRET_0 instead).
        if matches!(
            name,
            "ECH_SECRET" | "ECH_CONFIG" | "CLIENT_TRAFFIC_SECRET_N" | "SERVER_TRAFFIC_SECRET_N"
        ) {
            return Ok(());
        }
        let label = label(name).ok_or(KeyLogErrorKind::UnknownLabel)?;
        let mut random = [0u8; 32];
        if hex_decode(random_hex, &mut random) != Some(32) {
            return Err(KeyLogErrorKind::BadClientRandom);
        }
        let mut buf = [0u8; 48];
        let n = hex_decode(secret_hex, &mut buf).ok_or(KeyLogErrorKind::BadSecret)?;
        let secret = buf
            .get(..n)
            .and_then(Secret::new)
            .ok_or(KeyLogErrorKind::BadSecret)?;
        if matches!(label, Label::ClientRandom) && n != 48 {
            return Err(KeyLogErrorKind::BadSecret);
        }
        if !self.entries.contains_key(&random) && self.entries.len() >= self.config.max_entries {
            return Err(KeyLogErrorKind::TooManyEntries);
        }
        let e = self.entries.entry(random).or_default();
        let slot = match label {
            Label::ClientRandom => &mut e.master_secret,
            Label::ClientEarly => &mut e.client_early_traffic_secret,
            Label::ClientHandshake => &mut e.client_handshake_traffic_secret,
            Label::ServerHandshake => &mut e.server_handshake_traffic_secret,
            Label::ClientTraffic0 => &mut e.client_traffic_secret_0,
            Label::ServerTraffic0 => &mut e.server_traffic_secret_0,
            Label::Exporter => &mut e.exporter_secret,
            Label::EarlyExporter => &mut e.early_exporter_secret,
        };
        // A later line for the same connection and label wins, as in
        // Wireshark.
        *slot = Some(secret);
        Ok(())
    }

    /// Adds the key log carried by a pcapng Decryption Secrets Block, given
    /// as its `secrets_type` and secrets data (what
    /// `shadowmcp_capture::DecryptionSecrets` holds).
    pub fn add_secrets(
        &mut self,
        secrets_type: u32,
        data: &[u8],
    ) -> Result<Vec<KeyLogError>, DsbError> {
        if secrets_type != DSB_TLS_KEY_LOG {
            return Err(DsbError::UnsupportedSecretsType(secrets_type));
        }
        // The data is padded to 32 bits with zero bytes.
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Ok(self.add_bytes(data.get(..end).unwrap_or_default()))
    }

    /// Adds the key log of a whole pcapng Decryption Secrets Block (block
    /// type, total length, secrets type, secrets length, data, padding,
    /// options, total length), in either byte order: the order is taken
    /// from the block type field.
    pub fn add_decryption_secrets_block(
        &mut self,
        block: &[u8],
    ) -> Result<Vec<KeyLogError>, DsbError> {
        let field = |at: usize, big: bool| -> Result<u32, DsbError> {
            let b: [u8; 4] = block
                .get(at..at.saturating_add(4))
                .and_then(|s| s.try_into().ok())
                .ok_or(DsbError::Truncated)?;
            Ok(if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let big = if field(0, false)? == DSB_BLOCK_TYPE {
            false
        } else if field(0, true)? == DSB_BLOCK_TYPE {
            true
        } else {
            return Err(DsbError::NotDecryptionSecrets);
        };
        let total = usize::try_from(field(4, big)?).map_err(|_| DsbError::Truncated)?;
        if total > block.len() || total < 20 {
            return Err(DsbError::Truncated);
        }
        let secrets_type = field(8, big)?;
        let len = usize::try_from(field(12, big)?).map_err(|_| DsbError::Truncated)?;
        // Data must end before the trailing total-length field.
        let data = 16usize
            .checked_add(len)
            .filter(|&end| end <= total.saturating_sub(4))
            .and_then(|end| block.get(16..end))
            .ok_or(DsbError::Truncated)?;
        self.add_secrets(secrets_type, data)
    }

    /// The secrets logged for the connection with this client random.
    pub fn lookup(&self, client_random: &[u8; 32]) -> Option<&SessionSecrets> {
        self.entries.get(client_random)
    }

    /// Connections with at least one secret.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "dae1c0e43161f93f80857dcc2318510ad8dbcd6f24c02131cb99fe543dd4da28";
    const S32: &str = "1ab1f61b8b9c64ba1487b0925e2ec87de7b4f8bbdf9af012cee3874fecbff309";

    fn cr() -> [u8; 32] {
        let mut r = [0; 32];
        hex_decode(CR, &mut r).unwrap();
        r
    }

    #[test]
    fn tls13_labels_and_errors_with_line_numbers() {
        let s48 = "ab".repeat(48);
        let text = format!(
            "# SSL/TLS secrets log file\n\
             \n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {CR} {S32}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {S32}\r\n\
             CLIENT_TRAFFIC_SECRET_0 {CR} {s48}\n\
             SERVER_TRAFFIC_SECRET_0 {CR} {S32}\n\
             EXPORTER_SECRET {CR} {S32}\n\
             EARLY_TRAFFIC_SECRET {CR} {S32}\n\
             RSA 0102030405060708 {s48}\n\
             CLIENT_RANDOM {CR} {S32}\n\
             CLIENT_RANDOM {CR}\n\
             CLIENT_RANDOM zz{} {s48}\n\
             CLIENT_TRAFFIC_SECRET_0 {CR} {S32}0\n\
             CLIENT_TRAFFIC_SECRET_0 {CR} {S32}{S32}\n",
            &CR[2..]
        );
        let (log, errors) = KeyLog::parse(&text);
        assert_eq!(log.len(), 1);
        let s = log.lookup(&cr()).unwrap();
        assert_eq!(
            s.server_handshake_traffic_secret.unwrap().as_bytes().len(),
            32
        );
        assert!(
            s.client_handshake_traffic_secret.is_some(),
            "CRLF line endings accepted"
        );
        assert_eq!(
            s.client_traffic_secret_0.unwrap().as_bytes(),
            &[0xab; 48][..]
        );
        assert!(s.server_traffic_secret_0.is_some());
        assert!(s.exporter_secret.is_some());
        assert!(s.client_early_traffic_secret.is_some());
        assert!(
            s.master_secret.is_none(),
            "a 32-byte master secret is refused"
        );
        let got: Vec<(usize, KeyLogErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            got,
            vec![
                (9, KeyLogErrorKind::UnknownLabel),
                (10, KeyLogErrorKind::BadSecret),
                (11, KeyLogErrorKind::BadFormat),
                (12, KeyLogErrorKind::BadClientRandom),
                (13, KeyLogErrorKind::BadSecret),
                (14, KeyLogErrorKind::BadSecret),
            ]
        );
        assert!(log.lookup(&[0; 32]).is_none());
        assert_eq!(
            format!("{:?}", s.exporter_secret.unwrap()),
            "Secret(32 bytes)"
        );
    }

    #[test]
    fn entry_cap() {
        let mut log = KeyLog::new(KeyLogConfig { max_entries: 1 });
        let s48 = "00".repeat(48);
        assert_eq!(
            log.add_line(&format!("CLIENT_RANDOM {} {s48}", "11".repeat(32))),
            Ok(())
        );
        assert_eq!(
            log.add_line(&format!("CLIENT_RANDOM {} {s48}", "22".repeat(32))),
            Err(KeyLogErrorKind::TooManyEntries)
        );
        // More secrets for a known connection are still accepted.
        assert_eq!(
            log.add_line(&format!("EXPORTER_SECRET {} {S32}", "11".repeat(32))),
            Ok(())
        );
    }

    fn dsb(big: bool, secrets_type: u32, data: &[u8]) -> Vec<u8> {
        let padded = data.len().div_ceil(4) * 4;
        let total = (16 + padded + 4) as u32;
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w(DSB_BLOCK_TYPE));
        b.extend_from_slice(&w(total));
        b.extend_from_slice(&w(secrets_type));
        b.extend_from_slice(&w(data.len() as u32));
        b.extend_from_slice(data);
        b.resize(16 + padded, 0);
        b.extend_from_slice(&w(total));
        b
    }

    #[test]
    fn decryption_secrets_block_both_byte_orders() {
        let text = format!("CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {S32}\nbad line\n");
        for big in [false, true] {
            let block = dsb(big, DSB_TLS_KEY_LOG, text.as_bytes());
            let (mut log, errors) = KeyLog::from_decryption_secrets_block(&block).unwrap();
            assert!(log
                .lookup(&cr())
                .unwrap()
                .client_handshake_traffic_secret
                .is_some());
            assert_eq!(
                errors,
                vec![KeyLogError {
                    line: 2,
                    kind: KeyLogErrorKind::BadFormat
                }]
            );
            assert_eq!(
                log.add_decryption_secrets_block(&block[..block.len() - 8]),
                Err(DsbError::Truncated)
            );
        }
        let mut log = KeyLog::default();
        let raw = b"CLIENT_RANDOM \xff\n";
        let errors = log.add_secrets(DSB_TLS_KEY_LOG, raw).unwrap();
        assert_eq!(errors[0].kind, KeyLogErrorKind::NotUtf8);
        assert_eq!(
            log.add_decryption_secrets_block(&dsb(false, 0x5353_4844, b"x")),
            Err(DsbError::UnsupportedSecretsType(0x5353_4844))
        );
        assert_eq!(
            log.add_decryption_secrets_block(&[6, 0, 0, 0, 20, 0, 0, 0]),
            Err(DsbError::NotDecryptionSecrets)
        );
        // A secrets length pointing past the block.
        let mut block = dsb(false, DSB_TLS_KEY_LOG, b"abcd");
        block[12] = 200;
        assert_eq!(
            log.add_decryption_secrets_block(&block),
            Err(DsbError::Truncated)
        );
    }
}
