//! Record protection: key derivation (TLS 1.3 HKDF-Expand-Label, TLS 1.2
//! PRF) and AEAD record decryption, on `ring`'s primitives.

use ring::{aead, hkdf, hmac};

/// The AEAD of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Aead {
    fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::Chacha20Poly1305 => 32,
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Aead::Aes128Gcm => &aead::AES_128_GCM,
            Aead::Aes256Gcm => &aead::AES_256_GCM,
            Aead::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// The hash of a cipher suite (HKDF or PRF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub(crate) fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Hash::Sha256 => hkdf::HKDF_SHA256,
            Hash::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// A cipher suite this crate can decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Suite {
    pub id: u16,
    pub aead: Aead,
    pub hash: Hash,
    pub tls13: bool,
}

/// The decryptable suites: the TLS 1.3 AEAD suites without CCM, and the TLS
/// 1.2 AES-GCM and ChaCha20-Poly1305 suites whatever their key exchange (the
/// key log gives the master secret, so the exchange does not matter).
pub(crate) fn suite(id: u16) -> Option<Suite> {
    use Aead::*;
    use Hash::*;
    let (aead, hash, tls13) = match id {
        0x1301 => (Aes128Gcm, Sha256, true),
        0x1302 => (Aes256Gcm, Sha384, true),
        0x1303 => (Chacha20Poly1305, Sha256, true),
        // *_WITH_AES_128_GCM_SHA256: RSA, DHE_RSA, DHE_DSS, ECDHE_ECDSA, ECDHE_RSA
        0x009c | 0x009e | 0x00a2 | 0xc02b | 0xc02f => (Aes128Gcm, Sha256, false),
        0x009d | 0x009f | 0x00a3 | 0xc02c | 0xc030 => (Aes256Gcm, Sha384, false),
        // *_WITH_CHACHA20_POLY1305_SHA256 (RFC 7905): ECDHE_RSA, ECDHE_ECDSA, DHE_RSA
        0xcca8..=0xccaa => (Chacha20Poly1305, Sha256, false),
        _ => return None,
    };
    Some(Suite {
        id,
        aead,
        hash,
        tls13,
    })
}

/// IANA names of the common suites, for reports.
pub fn cipher_suite_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return None,
    })
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context; `secret` is the
/// PRK. Fails only when `out` is longer than HKDF allows or a label is over
/// 249 bytes, neither of which this crate asks for.
pub(crate) fn hkdf_expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(label.len().checked_add(6)?).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    prk.expand(&info, OutLen(out.len())).ok()?.fill(out).ok()
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed).
pub(crate) fn tls12_prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hash.hmac(), secret);
    // A(1) = HMAC(secret, label + seed)
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    for s in seed {
        ctx.update(s);
    }
    let mut a = ctx.sign();
    let mut filled = 0;
    while filled < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        for s in seed {
            ctx.update(s);
        }
        let block = ctx.sign();
        let rest = out.get_mut(filled..).unwrap_or_default();
        let n = rest.len().min(block.as_ref().len());
        if let (Some(dst), Some(src)) = (rest.get_mut(..n), block.as_ref().get(..n)) {
            dst.copy_from_slice(src);
        }
        filled += n;
        a = hmac::sign(&key, a.as_ref());
    }
}

/// How records of one direction are protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// TLS 1.3: nonce = iv XOR seq, additional data = record header, inner
    /// content type after the content.
    Tls13,
    /// TLS 1.2 AES-GCM (RFC 5288): 4-byte salt + 8-byte explicit nonce in
    /// the record.
    Tls12Gcm,
    /// TLS 1.2 ChaCha20-Poly1305 (RFC 7905): nonce = iv XOR seq.
    Tls12Chacha,
}

const TAG_LEN: usize = 16;

/// The record decryption key of one direction, with its sequence number.
pub(crate) struct RecordKey {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    framing: Framing,
    seq: u64,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKey")
            .field("framing", &self.framing)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Why a record did not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The record is too short to hold a tag (and explicit nonce).
    TooShort,
    /// The tag did not verify: wrong key, wrong sequence, or tampering.
    Auth,
    /// TLS 1.3 plaintext of only zeros: no inner content type.
    NoContentType,
}

impl RecordKey {
    /// TLS 1.3 key and iv from a traffic secret (RFC 8446 §7.3).
    pub(crate) fn tls13(suite: Suite, secret: &[u8]) -> Option<RecordKey> {
        if secret.len() != suite.hash.len() {
            return None;
        }
        let mut key = [0u8; 32];
        let key = key.get_mut(..suite.aead.key_len())?;
        hkdf_expand_label(suite.hash, secret, b"key", key)?;
        let mut iv = [0u8; 12];
        hkdf_expand_label(suite.hash, secret, b"iv", &mut iv)?;
        Self::new(suite, key, iv, Framing::Tls13)
    }

    /// The next TLS 1.3 traffic secret after a KeyUpdate (RFC 8446 §7.2).
    pub(crate) fn next_tls13_secret(suite: Suite, secret: &[u8]) -> Option<Vec<u8>> {
        let mut next = vec![0u8; suite.hash.len()];
        hkdf_expand_label(suite.hash, secret, b"traffic upd", &mut next)?;
        Some(next)
    }

    /// TLS 1.2 client and server keys from the master secret (RFC 5246
    /// §6.3: key_block = PRF(master, "key expansion", server_random +
    /// client_random); AEAD suites have no MAC keys).
    pub(crate) fn tls12_pair(
        suite: Suite,
        master_secret: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(RecordKey, RecordKey)> {
        let key_len = suite.aead.key_len();
        let (iv_len, framing) = match suite.aead {
            Aead::Chacha20Poly1305 => (12, Framing::Tls12Chacha),
            _ => (4, Framing::Tls12Gcm),
        };
        let mut block = [0u8; 2 * 32 + 2 * 12];
        let block = block.get_mut(..2 * key_len + 2 * iv_len)?;
        tls12_prf(
            suite.hash,
            master_secret,
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        let (client_key, rest) = block.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_iv, server_iv) = rest.split_at(iv_len);
        let pad = |src: &[u8]| {
            let mut iv = [0u8; 12];
            if let Some(dst) = iv.get_mut(..src.len()) {
                dst.copy_from_slice(src);
            }
            iv
        };
        Some((
            Self::new(suite, client_key, pad(client_iv), framing)?,
            Self::new(suite, server_key, pad(server_iv), framing)?,
        ))
    }

    fn new(suite: Suite, key: &[u8], iv: [u8; 12], framing: Framing) -> Option<RecordKey> {
        let unbound = aead::UnboundKey::new(suite.aead.algorithm(), key).ok()?;
        Some(RecordKey {
            key: aead::LessSafeKey::new(unbound),
            iv,
            framing,
            seq: 0,
        })
    }

    /// Records decrypted with this key so far.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// After lost records: the sequence number of the next record.
    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The smallest record body this framing can produce.
    pub(crate) fn min_record_body(&self) -> usize {
        match self.framing {
            Framing::Tls13 => TAG_LEN + 1,
            Framing::Tls12Gcm => 8 + TAG_LEN,
            Framing::Tls12Chacha => TAG_LEN,
        }
    }

    /// TLS 1.2 AES-GCM: the explicit nonce of a record, which most
    /// implementations set to the sequence number.
    pub(crate) fn explicit_nonce(&self, fragment: &[u8]) -> Option<u64> {
        if self.framing != Framing::Tls12Gcm {
            return None;
        }
        Some(u64::from_be_bytes(fragment.get(..8)?.try_into().ok()?))
    }

    /// TLS 1.3 framing (only application_data records are protected).
    pub(crate) fn is_tls13(&self) -> bool {
        self.framing == Framing::Tls13
    }

    /// `iv` XOR the sequence number, right-aligned.
    fn xor_nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// Decrypts one record (`header` is its 5-byte header, `fragment` its
    /// body) into `scratch`, returning the content type and the plaintext
    /// range of `scratch`. On success the sequence number advances; on
    /// failure it does not, so a caller may retry the record with another
    /// key.
    pub(crate) fn open(
        &mut self,
        header: [u8; 5],
        fragment: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(u8, std::ops::Range<usize>), OpenError> {
        let [outer_type, v0, v1, ..] = header;
        let seq = self.seq.to_be_bytes();
        scratch.clear();
        // Additional data: the header (TLS 1.3) or 13 bytes (TLS 1.2).
        let aad12: [u8; 13];
        let (nonce, aad, ciphertext): ([u8; 12], &[u8], &[u8]) = match self.framing {
            Framing::Tls13 => {
                if fragment.len() < TAG_LEN + 1 {
                    return Err(OpenError::TooShort);
                }
                (self.xor_nonce(), &header[..], fragment)
            }
            Framing::Tls12Gcm => {
                if fragment.len() < 8 + TAG_LEN {
                    return Err(OpenError::TooShort);
                }
                let (explicit, ct) = fragment.split_at(8);
                let mut nonce = [0u8; 12];
                for (n, b) in nonce
                    .iter_mut()
                    .zip(self.iv.iter().take(4).chain(explicit.iter()))
                {
                    *n = *b;
                }
                aad12 = tls12_aad(seq, outer_type, [v0, v1], ct.len());
                (nonce, &aad12[..], ct)
            }
            Framing::Tls12Chacha => {
                if fragment.len() < TAG_LEN {
                    return Err(OpenError::TooShort);
                }
                aad12 = tls12_aad(seq, outer_type, [v0, v1], fragment.len());
                (self.xor_nonce(), &aad12[..], fragment)
            }
        };
        scratch.extend_from_slice(ciphertext);
        let plain_len = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                scratch,
            )
            .map_err(|_| OpenError::Auth)?
            .len();
        self.seq = self.seq.wrapping_add(1);
        match self.framing {
            Framing::Tls13 => {
                // Strip the zero padding; the last non-zero byte is the type.
                let plain = scratch.get(..plain_len).unwrap_or_default();
                let at = plain
                    .iter()
                    .rposition(|&b| b != 0)
                    .ok_or(OpenError::NoContentType)?;
                let inner = plain.get(at).copied().ok_or(OpenError::NoContentType)?;
                Ok((inner, 0..at))
            }
            _ => Ok((outer_type, 0..plain_len)),
        }
    }
}

/// TLS 1.2 AEAD additional data: seq_num + type + version + length of the
/// plaintext (RFC 5246 §6.2.3.3).
fn tls12_aad(seq: [u8; 8], typ: u8, version: [u8; 2], ciphertext_len: usize) -> [u8; 13] {
    let [l0, l1] = u16::try_from(ciphertext_len.saturating_sub(TAG_LEN))
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    let [s0, s1, s2, s3, s4, s5, s6, s7] = seq;
    [
        s0, s1, s2, s3, s4, s5, s6, s7, typ, version[0], version[1], l0, l1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3 (simple 1-RTT handshake): the server handshake traffic
    /// secret and the key and iv derived from it.
    #[test]
    fn rfc8448_handshake_key_and_iv() {
        let secret = unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        let mut key = [0u8; 16];
        hkdf_expand_label(Hash::Sha256, &secret, b"key", &mut key).unwrap();
        assert_eq!(key.to_vec(), unhex("3fce516009c21727d0f2e4e86ee403bc"));
        let mut iv = [0u8; 12];
        hkdf_expand_label(Hash::Sha256, &secret, b"iv", &mut iv).unwrap();
        assert_eq!(iv.to_vec(), unhex("5d313eb2671276ee13000b30"));
    }

    /// The widely used TLS 1.2 PRF test vector (P_SHA256, from the IETF TLS
    /// mailing list, reproduced by many implementations' test suites).
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = unhex("9bbe436ba940f017b17652849a71db35");
        let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
        let mut out = [0u8; 100];
        tls12_prf(Hash::Sha256, &secret, b"test label", &[&seed], &mut out);
        assert_eq!(
            out.to_vec(),
            unhex(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
                 6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
                 4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
                 87347b66"
            )
        );
    }

    #[test]
    fn suites() {
        assert_eq!(suite(0x1302).unwrap().hash, Hash::Sha384);
        assert!(suite(0x1304).is_none(), "CCM is not supported");
        assert!(suite(0xc027).is_none(), "CBC is not supported");
        assert_eq!(suite(0xcca8).unwrap().aead, Aead::Chacha20Poly1305);
        assert_eq!(
            cipher_suite_name(0xc02f),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
    }

    #[test]
    fn tls13_seal_then_open_round_trip_and_failures() {
        let suite = suite(0x1303).unwrap();
        let secret = [7u8; 32];
        let mut key = RecordKey::tls13(suite, &secret).unwrap();
        assert!(
            RecordKey::tls13(suite, &[7u8; 48]).is_none(),
            "secret of the wrong size"
        );
        // Seal "hi" + type 23 + 2 padding bytes with the same key material.
        let mut k = [0u8; 32];
        hkdf_expand_label(Hash::Sha256, &secret, b"key", &mut k).unwrap();
        let sealer =
            aead::LessSafeKey::new(aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &k).unwrap());
        let mut data = b"hi\x17\0\0".to_vec();
        let header = [23, 3, 3, 0, (data.len() + 16) as u8];
        sealer
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(key.xor_nonce()),
                aead::Aad::from(header),
                &mut data,
            )
            .unwrap();
        let mut scratch = Vec::new();
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert_eq!(key.open(header, &bad, &mut scratch), Err(OpenError::Auth));
        assert_eq!(
            key.seq(),
            0,
            "a failed record does not advance the sequence"
        );
        assert_eq!(
            key.open(header, &data[..16], &mut scratch),
            Err(OpenError::TooShort)
        );
        let (typ, range) = key.open(header, &data, &mut scratch).unwrap();
        assert_eq!((typ, &scratch[range]), (23, &b"hi"[..]));
        assert_eq!(key.seq(), 1);
        // The same record again fails: the nonce moved on.
        assert_eq!(key.open(header, &data, &mut scratch), Err(OpenError::Auth));
    }
}
