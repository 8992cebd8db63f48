//! ClientHello, ServerHello and EncryptedExtensions bodies (RFC 8446 §4.1.2,
//! §4.1.3, §4.3.1; RFC 5246 §7.4.1), parsed from a complete handshake message
//! body (the 4-byte handshake header already removed).

use std::fmt;

use crate::reader::Reader;

/// A TLS protocol version as on the wire (`0x0303` = TLS 1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsVersion(pub u16);

impl TlsVersion {
    pub const SSL3: TlsVersion = TlsVersion(0x0300);
    pub const TLS10: TlsVersion = TlsVersion(0x0301);
    pub const TLS11: TlsVersion = TlsVersion(0x0302);
    pub const TLS12: TlsVersion = TlsVersion(0x0303);
    pub const TLS13: TlsVersion = TlsVersion(0x0304);

    /// The name Wireshark and most tools use (`"TLSv1.3"`), `None` for
    /// versions this crate does not know (GREASE values, drafts).
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            TlsVersion::SSL3 => "SSLv3",
            TlsVersion::TLS10 => "TLSv1.0",
            TlsVersion::TLS11 => "TLSv1.1",
            TlsVersion::TLS12 => "TLSv1.2",
            TlsVersion::TLS13 => "TLSv1.3",
            _ => return None,
        })
    }

    /// GREASE values (RFC 8701) are sent to keep peers tolerant; they never
    /// name a real version, group or suite.
    pub fn is_grease(self) -> bool {
        is_grease(self.0)
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

/// RFC 8701: `0x?a?a` with both bytes equal.
pub(crate) fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && hi & 0x0f == 0x0a
}

/// Extension numbers this crate reads.
pub(crate) mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const ALPN: u16 = 16;
    pub const PRE_SHARED_KEY: u16 = 41;
    pub const EARLY_DATA: u16 = 42;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
    /// Encrypted Client Hello (draft-ietf-tls-esni, final code point).
    pub const ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
}

/// The `random` of a ServerHello that makes it a HelloRetryRequest
/// (RFC 8446 §4.1.3: SHA-256 of "HelloRetryRequest").
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What a ClientHello says, without keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (`0x0303` for TLS 1.2 and 1.3 clients).
    pub legacy_version: TlsVersion,
    /// The client random: the key a key log is indexed by.
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    /// Offered cipher suites in the client's order (GREASE included).
    pub cipher_suites: Vec<u16>,
    /// `host_name` of the server_name extension. With Encrypted Client Hello
    /// this is the outer (public) name, not the real destination.
    pub sni: Option<String>,
    /// Offered ALPN protocol names in the client's order (non-UTF-8 names
    /// replaced lossily).
    pub alpn: Vec<String>,
    /// Versions of the supported_versions extension (empty when absent).
    pub supported_versions: Vec<TlsVersion>,
    /// Groups of the key_share extension, `None` when it is absent.
    pub key_share_groups: Option<Vec<u16>>,
    /// An encrypted_client_hello extension (0xfe0d) is present.
    pub ech: bool,
    /// The early_data extension is present (0-RTT offered).
    pub early_data: bool,
    /// The pre_shared_key extension is present (resumption offered).
    pub pre_shared_key: bool,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// Extensions whose contents did not parse; they were skipped.
    pub malformed_extensions: u32,
}

impl ClientHello {
    /// The highest non-GREASE version offered: supported_versions when
    /// present, else `legacy_version`.
    pub fn max_version(&self) -> TlsVersion {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !v.is_grease())
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// What a ServerHello (or HelloRetryRequest) says, without keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: TlsVersion,
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    pub cipher_suite: u16,
    /// The supported_versions extension's selected version (TLS 1.3).
    pub selected_version: Option<TlsVersion>,
    /// ALPN protocol selected in the ServerHello (TLS 1.2 and earlier; TLS
    /// 1.3 sends it in the encrypted EncryptedExtensions).
    pub alpn: Option<String>,
    /// Group of the key_share extension.
    pub key_share_group: Option<u16>,
    /// This is a HelloRetryRequest (its random is
    /// [`HELLO_RETRY_REQUEST_RANDOM`]).
    pub hello_retry_request: bool,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// Extensions whose contents did not parse; they were skipped.
    pub malformed_extensions: u32,
}

impl ServerHello {
    /// The version the server chose: supported_versions, else
    /// `legacy_version`.
    pub fn version(&self) -> TlsVersion {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Extensions of an EncryptedExtensions message that matter here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EncryptedExtensions {
    pub alpn: Option<String>,
    pub early_data: bool,
}

/// Why a hello did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Walks an extensions block, calling `f(type, body)` for each; `f` returns
/// `None` when the body is malformed (counted, not fatal).
fn for_each_extension(
    r: &mut Reader<'_>,
    types: &mut Vec<u16>,
    malformed: &mut u32,
    mut f: impl FnMut(u16, Reader<'_>) -> Option<()>,
) -> Result<(), Malformed> {
    // A hello may end before the extensions block (TLS 1.0-era clients).
    if r.is_empty() {
        return Ok(());
    }
    let mut exts = r.vec16().ok_or(Malformed)?;
    while !exts.is_empty() {
        let typ = exts.u16().ok_or(Malformed)?;
        let body = exts.vec16().ok_or(Malformed)?;
        types.push(typ);
        if f(typ, body).is_none() {
            *malformed = malformed.saturating_add(1);
        }
    }
    Ok(())
}

/// `ProtocolNameList` (RFC 7301 §3.1).
fn alpn_list(mut body: Reader<'_>) -> Option<Vec<String>> {
    let mut list = body.vec16()?;
    if !body.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut name = list.vec8()?;
        if name.is_empty() {
            return None;
        }
        out.push(lossy(name.rest()));
    }
    Some(out)
}

pub(crate) fn parse_client_hello(body: &[u8]) -> Result<ClientHello, Malformed> {
    let mut r = Reader::new(body);
    let mut ch = ClientHello {
        legacy_version: TlsVersion(r.u16().ok_or(Malformed)?),
        random: r.array().ok_or(Malformed)?,
        ..ClientHello::default()
    };
    let mut sid = r.vec8().ok_or(Malformed)?;
    if sid.remaining() > 32 {
        return Err(Malformed);
    }
    ch.session_id = sid.rest().to_vec();
    let mut suites = r.vec16().ok_or(Malformed)?;
    if suites.remaining() % 2 != 0 {
        return Err(Malformed);
    }
    while let Some(s) = suites.u16() {
        ch.cipher_suites.push(s);
    }
    let _compression = r.vec8().ok_or(Malformed)?;
    let mut types = Vec::new();
    let mut malformed = 0;
    for_each_extension(&mut r, &mut types, &mut malformed, |typ, mut b| {
        match typ {
            ext::SERVER_NAME => {
                let mut list = b.vec16()?;
                while !list.is_empty() {
                    let name_type = list.u8()?;
                    let mut name = list.vec16()?;
                    // host_name (0) is the only type defined; keep the first.
                    if name_type == 0 && ch.sni.is_none() {
                        ch.sni = Some(lossy(name.rest()));
                    }
                }
            }
            ext::ALPN => ch.alpn = alpn_list(b)?,
            ext::SUPPORTED_VERSIONS => {
                let mut list = b.vec8()?;
                if list.remaining() % 2 != 0 {
                    return None;
                }
                while let Some(v) = list.u16() {
                    ch.supported_versions.push(TlsVersion(v));
                }
            }
            ext::KEY_SHARE => {
                let mut list = b.vec16()?;
                let mut groups = Vec::new();
                while !list.is_empty() {
                    groups.push(list.u16()?);
                    list.vec16()?;
                }
                ch.key_share_groups = Some(groups);
            }
            ext::ENCRYPTED_CLIENT_HELLO => ch.ech = true,
            ext::EARLY_DATA => ch.early_data = true,
            ext::PRE_SHARED_KEY => ch.pre_shared_key = true,
            _ => {}
        }
        Some(())
    })?;
    if !r.is_empty() {
        return Err(Malformed);
    }
    ch.extensions = types;
    ch.malformed_extensions = malformed;
    Ok(ch)
}

pub(crate) fn parse_server_hello(body: &[u8]) -> Result<ServerHello, Malformed> {
    let mut r = Reader::new(body);
    let mut sh = ServerHello {
        legacy_version: TlsVersion(r.u16().ok_or(Malformed)?),
        random: r.array().ok_or(Malformed)?,
        ..ServerHello::default()
    };
    sh.hello_retry_request = sh.random == HELLO_RETRY_REQUEST_RANDOM;
    let mut sid = r.vec8().ok_or(Malformed)?;
    if sid.remaining() > 32 {
        return Err(Malformed);
    }
    sh.session_id = sid.rest().to_vec();
    sh.cipher_suite = r.u16().ok_or(Malformed)?;
    let _compression = r.u8().ok_or(Malformed)?;
    let mut types = Vec::new();
    let mut malformed = 0;
    for_each_extension(&mut r, &mut types, &mut malformed, |typ, mut b| {
        match typ {
            ext::SUPPORTED_VERSIONS => {
                sh.selected_version = Some(TlsVersion(b.u16()?));
            }
            ext::ALPN => {
                let mut list = alpn_list(b)?;
                if list.len() != 1 {
                    return None;
                }
                sh.alpn = list.pop();
            }
            ext::KEY_SHARE => sh.key_share_group = Some(b.u16()?),
            _ => {}
        }
        Some(())
    })?;
    if !r.is_empty() {
        return Err(Malformed);
    }
    sh.extensions = types;
    sh.malformed_extensions = malformed;
    Ok(sh)
}

pub(crate) fn parse_encrypted_extensions(body: &[u8]) -> Result<EncryptedExtensions, Malformed> {
    let mut r = Reader::new(body);
    let mut ee = EncryptedExtensions::default();
    let mut types = Vec::new();
    let mut malformed = 0;
    if r.is_empty() {
        return Err(Malformed);
    }
    for_each_extension(&mut r, &mut types, &mut malformed, |typ, b| {
        match typ {
            ext::ALPN => {
                let mut list = alpn_list(b)?;
                if list.len() != 1 {
                    return None;
                }
                ee.alpn = list.pop();
            }
            ext::EARLY_DATA => ee.early_data = true,
            _ => {}
        }
        Some(())
    })?;
    if !r.is_empty() || malformed > 0 {
        return Err(Malformed);
    }
    Ok(ee)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x0303));
        assert_eq!(TlsVersion(0x0304).to_string(), "TLSv1.3");
        assert_eq!(TlsVersion(0x7f1c).to_string(), "0x7f1c");
    }

    #[test]
    fn server_hello_minimal() {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0); // session id
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
        let sh = parse_server_hello(&b).unwrap();
        assert_eq!(sh.cipher_suite, 0xc02f);
        assert_eq!(sh.version(), TlsVersion::TLS12);
        assert!(!sh.hello_retry_request);
        // A session id longer than 32 bytes is refused.
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(33);
        b.extend_from_slice(&[0; 33]);
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
        assert_eq!(parse_server_hello(&b), Err(Malformed));
    }

    #[test]
    fn encrypted_extensions_alpn() {
        // extensions: ALPN ["h2"], early_data
        let b = [0, 13, 0, 16, 0, 5, 0, 3, 2, b'h', b'2', 0, 42, 0, 0];
        let ee = parse_encrypted_extensions(&b).unwrap();
        assert_eq!(ee.alpn.as_deref(), Some("h2"));
        assert!(ee.early_data);
        assert_eq!(
            parse_encrypted_extensions(&b[..b.len() - 1]),
            Err(Malformed)
        );
        // Two protocols selected is not a valid answer.
        let b = [0, 11, 0, 16, 0, 7, 0, 5, 1, b'a', 2, b'h', b'2'];
        assert_eq!(parse_encrypted_extensions(&b), Err(Malformed));
    }
}
