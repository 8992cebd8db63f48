//! Live capture from an interface with libpcap (cargo feature `live`).
//!
//! A [`LiveSource`] is a [`PacketSource`]: the same pipeline as for capture
//! files runs on it. The handle is non-blocking (libpcap's read timeout does
//! not wake a blocked read on a quiet Linux interface), and an empty read
//! waits 1 ms before trying again, so idle timeouts run and a stop request
//! is seen within 100 ms even when no packet comes. Kernel and interface
//! drops reported by libpcap are exposed by [`PacketSource::drops`], never
//! hidden.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shadowmcp_capture::{CaptureError, LinkType, Packet, ReaderStats};
use shadowmcp_exchange::Timestamp;

use crate::{Next, PacketSource};

/// How to open an interface.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// A BPF filter (tcpdump syntax), e.g. `tcp port 80 or tcp port 8080`.
    pub filter: Option<String>,
    pub promiscuous: bool,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Kernel buffer size in bytes (libpcap default when `None`).
    pub buffer_size: Option<i32>,
}

impl LiveConfig {
    pub fn new(interface: &str) -> LiveConfig {
        LiveConfig {
            interface: interface.to_string(),
            filter: None,
            promiscuous: false,
            snaplen: 262_144,
            buffer_size: Some(64 << 20),
        }
    }
}

/// Packets from a live interface, until `stop` is set.
pub struct LiveSource {
    name: String,
    capture: pcap::Capture<pcap::Active>,
    linktype: LinkType,
    stop: Arc<AtomicBool>,
    packets: u64,
    /// The packet being handed out (copied out of libpcap's ring, see
    /// `next`).
    data: Vec<u8>,
}

/// How long a quiet interface may keep `next` waiting.
const IDLE_REPORT: Duration = Duration::from_millis(100);
/// Pause between two empty non-blocking reads.
const EMPTY_READ_PAUSE: Duration = Duration::from_millis(1);

fn error(name: &str, what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Io {
        input: name.to_string(),
        source: std::io::Error::other(format!("{what}: {e}")),
    }
}

impl LiveSource {
    /// Opens the interface (needs CAP_NET_RAW or root). `stop` ends the
    /// capture cleanly at the next wake-up (e.g. set by a SIGINT handler).
    pub fn open(config: &LiveConfig, stop: Arc<AtomicBool>) -> Result<LiveSource, CaptureError> {
        let name = format!("live:{}", config.interface);
        let mut inactive = pcap::Capture::from_device(config.interface.as_str())
            .map_err(|e| error(&name, "cannot use interface", e))?
            .promisc(config.promiscuous)
            .snaplen(config.snaplen)
            .immediate_mode(true)
            .timeout(100);
        if let Some(size) = config.buffer_size {
            inactive = inactive.buffer_size(size);
        }
        let mut capture = inactive
            .open()
            .map_err(|e| error(&name, "cannot capture", e))?
            .setnonblock()
            .map_err(|e| error(&name, "cannot make the capture non-blocking", e))?;
        if let Some(filter) = &config.filter {
            capture
                .filter(filter, true)
                .map_err(|e| error(&name, "bad BPF filter", e))?;
        }
        let linktype = LinkType(capture.get_datalink().0 as u32);
        Ok(LiveSource {
            name,
            capture,
            linktype,
            stop,
            packets: 0,
            data: Vec::new(),
        })
    }
}

impl PacketSource for LiveSource {
    fn input(&self) -> &str {
        &self.name
    }

    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        let waiting_since = Instant::now();
        // The packet is copied out of libpcap's buffer: a packet borrowed
        // from inside this retry loop could not be returned from it.
        let (ts, orig_len) = loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Next::End);
            }
            match self.capture.next_packet() {
                Ok(p) => {
                    self.data.clear();
                    self.data.extend_from_slice(p.data);
                    let tv = p.header.ts;
                    // time_t is i64 here but 32-bit on some platforms.
                    #[allow(clippy::unnecessary_cast)]
                    let epoch_secs = tv.tv_sec as i64;
                    let nanos = u32::try_from(tv.tv_usec).unwrap_or(0).saturating_mul(1000);
                    break (
                        Timestamp::from_secs_nanos(epoch_secs, nanos.min(999_999_999)),
                        p.header.len,
                    );
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if waiting_since.elapsed() >= IDLE_REPORT {
                        return Ok(Next::Idle(Timestamp::now()));
                    }
                    std::thread::sleep(EMPTY_READ_PAUSE);
                }
                Err(pcap::Error::NoMorePackets) => return Ok(Next::End),
                Err(e) => return Err(error(&self.name, "capture failed", e)),
            }
        };
        self.packets += 1;
        Ok(Next::Packet(Packet {
            ts,
            linktype: self.linktype,
            data: &self.data,
            orig_len,
            number: self.packets,
        }))
    }

    fn stats(&self) -> ReaderStats {
        ReaderStats {
            packets: self.packets,
            ..ReaderStats::default()
        }
    }

    fn drops(&mut self) -> Option<(u64, u64)> {
        self.capture
            .stats()
            .ok()
            .map(|s| (u64::from(s.dropped), u64::from(s.if_dropped)))
    }
}
