//! HTTP/1.1 message and body builders for the generator.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::rng::Rng;

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    ContentLength,
    /// `Transfer-Encoding: chunked`, chunks of random size up to 16 KiB.
    Chunked,
}

/// A request with `Content-Length` when it has a body.
pub fn request(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(256 + body.len());
    let _ = write!(m, "{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(m, "{name}: {value}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        let _ = write!(m, "Content-Length: {}\r\n", body.len());
    }
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(body);
    m
}

/// A response; `body` is sent as given (already compressed if the caller
/// added `Content-Encoding`).
pub fn response(
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    framing: Framing,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(256 + body.len() + body.len() / 1024);
    let _ = write!(
        m,
        "HTTP/1.1 {status} {reason}\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
    );
    for (name, value) in headers {
        let _ = write!(m, "{name}: {value}\r\n");
    }
    match framing {
        Framing::ContentLength => {
            let _ = write!(m, "Content-Length: {}\r\n\r\n", body.len());
            m.extend_from_slice(body);
        }
        Framing::Chunked => {
            m.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = body;
            while !rest.is_empty() {
                let n = rng.size(1, 16 * 1024).min(rest.len());
                let _ = write!(m, "{n:x}\r\n");
                m.extend_from_slice(&rest[..n]);
                m.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            m.extend_from_slice(b"0\r\n\r\n");
        }
    }
    m
}

/// Chunked framing of pre-cut pieces (one chunk per SSE event, as servers
/// flush them), ending with the last chunk when `end` is set.
pub fn chunked_pieces(head: &str, pieces: &[Vec<u8>], end: bool) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(head.as_bytes());
    for p in pieces {
        let _ = write!(m, "{:x}\r\n", p.len());
        m.extend_from_slice(p);
        m.extend_from_slice(b"\r\n");
    }
    if end {
        m.extend_from_slice(b"0\r\n\r\n");
    }
    m
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "shows",
    "growth",
    "in",
    "regional",
    "sales",
    "and",
    "customer",
    "support",
    "tickets",
    "were",
    "resolved",
    "faster",
    "than",
    "last",
    "year",
    "our",
    "team",
    "shipped",
    "new",
    "features",
    "for",
    "billing",
    "search",
    "inventory",
    "dashboard",
    "with",
    "improved",
    "latency",
    "across",
    "every",
    "datacenter",
    "please",
    "review",
    "policy",
    "update",
    "before",
    "friday",
    "meeting",
    "notes",
    "include",
    "travel",
    "budget",
    "hiring",
    "plan",
    "a",
    "of",
    "to",
    "is",
    "on",
    "by",
    "product",
    "launch",
    "marketing",
    "campaign",
    "results",
    "weekly",
    "status",
    "engineering",
    "platform",
    "migration",
    "storage",
];

/// Appends prose of about `len` bytes.
pub fn prose(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    while out.len() < end {
        out.extend_from_slice(rng.pick(WORDS).as_bytes());
        out.push(if rng.chance(80) { b'.' } else { b' ' });
    }
}

/// An HTML page of about `len` bytes.
pub fn html_page(rng: &mut Rng, title: &str, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len + 512);
    let _ = write!(
        b,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/static/site.{}.css\"><script src=\"/static/app.{}.js\" defer></script></head>\n\
         <body><header><nav><a href=\"/\">Home</a> <a href=\"/news\">News</a> <a href=\"/products\">Products</a></nav></header><main>\n",
        rng.hex(8),
        rng.hex(8)
    );
    while b.len() < len {
        let _ = write!(b, "<article id=\"a{}\"><h2>", rng.below(100_000));
        prose(rng, &mut b, 40);
        b.extend_from_slice(b"</h2><p>");
        let n = rng.size(200, 900);
        prose(rng, &mut b, n);
        let _ = writeln!(
            b,
            "</p><a class=\"more\" href=\"/articles/{}\">Read more</a></article>",
            rng.below(1_000_000)
        );
    }
    b.extend_from_slice(b"</main><footer>&copy; 2026</footer></body></html>\n");
    b
}

/// A JSON document of about `len` bytes: a page of catalogue items.
pub fn json_items(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len + 256);
    b.extend_from_slice(b"{\"items\":[");
    let mut first = true;
    while b.len() < len {
        if !first {
            b.push(b',');
        }
        first = false;
        let _ = write!(
            b,
            "{{\"id\":{},\"sku\":\"SKU-{}\",\"name\":\"",
            rng.below(10_000_000),
            rng.hex(6)
        );
        prose(rng, &mut b, 24);
        let _ = write!(
            b,
            "\",\"price\":{}.{:02},\"currency\":\"EUR\",\"in_stock\":{},\"tags\":[\"{}\",\"{}\"],\"updated_at\":\"2026-11-{:02}T{:02}:{:02}:00Z\"}}",
            rng.below(2000),
            rng.below(100),
            rng.chance(700),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.range(1, 28),
            rng.below(24),
            rng.below(60)
        );
    }
    let _ = write!(b, "],\"next\":\"/api/v1/items?cursor={}\"}}", rng.hex(16));
    b
}

/// CSV rows of about `len` bytes (compresses like real exports do).
pub fn csv(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len + 128);
    b.extend_from_slice(b"date,region,product,units,revenue,comment\n");
    while b.len() < len {
        let _ = write!(
            b,
            "2026-{:02}-{:02},{},{},{},{}.{:02},",
            rng.range(1, 12),
            rng.range(1, 28),
            rng.pick(&["north", "south", "east", "west", "central"]),
            rng.pick(WORDS),
            rng.below(5000),
            rng.below(100_000),
            rng.below(100)
        );
        prose(rng, &mut b, 20);
        b.push(b'\n');
    }
    b
}

/// Incompressible bytes (archives, images).
pub fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rng.fill(&mut b);
    b
}

/// One WebSocket text frame (RFC 6455); client frames are masked.
pub fn ws_text_frame(rng: &mut Rng, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x81);
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = rng.next_u32().to_be_bytes();
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_response_round_trips() {
        let mut rng = Rng::new(3);
        let body = binary(&mut rng, 40_000);
        let msg = response(200, "OK", &[], &body, Framing::Chunked, &mut rng);
        let start = msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (mut rest, mut decoded) = (&msg[start..], Vec::new());
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            rest = &rest[eol + 2..];
            if n == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
        assert_eq!(decoded, body);
        assert_eq!(rest, b"\r\n");
    }

    #[test]
    fn gzip_is_real_gzip() {
        let mut rng = Rng::new(4);
        let text = csv(&mut rng, 10_000);
        let z = gzip(&text);
        assert!(z.len() < text.len() / 2);
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        assert_eq!(back, text);
    }
}
