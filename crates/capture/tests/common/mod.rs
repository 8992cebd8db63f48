//! Byte builders for pcapng captures and hand-made IP packets (tests only;
//! classic pcap comes from the crate's public `writer`).
#![allow(dead_code)]

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Builds a pcapng file block by block; each section may pick its byte order.
#[derive(Default)]
pub struct NgBuilder {
    pub out: Vec<u8>,
    big_endian: bool,
}

impl NgBuilder {
    pub fn new() -> NgBuilder {
        NgBuilder::default()
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Appends a block with the given type and body (padded to 4 bytes).
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let (t, l) = (self.u32(block_type), self.u32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    fn options(&self, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut v = Vec::new();
        if opts.is_empty() {
            return v;
        }
        for (code, value) in opts {
            v.extend_from_slice(&self.u16(*code));
            v.extend_from_slice(&self.u16(value.len() as u16));
            v.extend_from_slice(value);
            v.resize(v.len().div_ceil(4) * 4, 0);
        }
        v.extend_from_slice(&[0, 0, 0, 0]);
        v
    }

    pub fn shb(&mut self, big_endian: bool) -> &mut Self {
        self.big_endian = big_endian;
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&(-1i64).to_le_bytes());
        self.block(0x0A0D_0D0A, &body)
    }

    pub fn idb(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> &mut Self {
        self.idb_snaplen(linktype, 0, tsresol, tsoffset)
    }

    pub fn idb_snaplen(
        &mut self,
        linktype: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16(linktype));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(snaplen));
        let mut opts = vec![(2u16, b"eth0".to_vec())];
        if let Some(r) = tsresol {
            opts.push((9, vec![r]));
        }
        if let Some(o) = tsoffset {
            let b = if self.big_endian {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            opts.push((14, b.to_vec()));
        }
        let o = self.options(&opts);
        body.extend_from_slice(&o);
        self.block(1, &body)
    }

    pub fn epb(&mut self, if_id: u32, ts_units: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(if_id));
        body.extend_from_slice(&self.u32((ts_units >> 32) as u32));
        body.extend_from_slice(&self.u32(ts_units as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(orig_len));
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        let o = self.options(&[(1, b"comment".to_vec())]);
        body.extend_from_slice(&o);
        self.block(6, &body)
    }

    pub fn spb(&mut self, data: &[u8]) -> &mut Self {
        self.spb_orig(data, data.len() as u32)
    }

    /// An SPB whose packet was `orig_len` long on the wire.
    pub fn spb_orig(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(orig_len));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    pub fn dsb(&mut self, secrets_type: u32, secrets: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(secrets_type));
        body.extend_from_slice(&self.u32(secrets.len() as u32));
        body.extend_from_slice(secrets);
        self.block(0x0000_000A, &body)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// An IPv6 extension header of the hop-by-hop / routing / destination
/// options shape, 8 bytes.
pub fn ipv6_ext(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 packet with the given next header and body.
pub fn ipv6_packet(src: [u8; 16], dst: [u8; 16], next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(body);
    p
}
