//! A slow, far link between a client and a relay (issue 9): a TCP proxy on
//! loopback with a bandwidth per direction, a one-way delay, optional loss and
//! a cut after N bytes.
//!
//! It is pipelined like a real link. Each direction has a reader that takes
//! bytes off the sending socket in packets of at most [`MSS`] bytes and stamps
//! each with the time it finishes crossing the link: it starts once the
//! previous packet has been sent (serialisation at the link's rate) and arrives
//! one delay later. A writer delivers packets in order at their time. So a
//! long upload pays its delay once, not once per write, and both directions
//! run at the same time.
//!
//! A new connection pays the TCP handshake: its first client byte cannot leave
//! before one round trip after the connection was accepted. A lost packet
//! arrives one retransmission timeout later and holds up those behind it, as
//! TCP would.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest packet the link carries (bytes of TCP payload).
pub const MSS: usize = 1400;

/// The link's shape.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Client to relay, bits per second.
    pub up_bps: u64,
    /// Relay to client, bits per second.
    pub down_bps: u64,
    /// One-way delay (half the round trip).
    pub delay: Duration,
    /// Probability that a packet is lost (and retransmitted one RTO later).
    pub loss: f64,
    /// Retransmission timeout applied to a lost packet.
    pub rto: Duration,
}

impl LinkConfig {
    /// A symmetric link: `kbps` each way, `rtt` round trip, no loss.
    pub fn symmetric(kbps: u64, rtt: Duration) -> LinkConfig {
        LinkConfig {
            up_bps: kbps * 1000,
            down_bps: kbps * 1000,
            delay: rtt / 2,
            loss: 0.0,
            rto: (rtt * 2).max(Duration::from_millis(200)),
        }
    }

    /// The round trip.
    pub fn rtt(&self) -> Duration {
        self.delay * 2
    }

    /// Time to push `bytes` through at `bps`.
    pub fn transmit(bytes: u64, bps: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / bps.max(1) as f64)
    }
}

/// Bytes carried, counted on the link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    pub connections: AtomicU64,
    pub up_bytes: AtomicU64,
    pub down_bytes: AtomicU64,
    pub lost_packets: AtomicU64,
}

/// A snapshot of [`LinkCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub connections: u64,
    pub up_bytes: u64,
    pub down_bytes: u64,
    pub lost_packets: u64,
}

impl std::ops::Sub for LinkStats {
    type Output = LinkStats;
    fn sub(self, o: LinkStats) -> LinkStats {
        LinkStats {
            connections: self.connections - o.connections,
            up_bytes: self.up_bytes - o.up_bytes,
            down_bytes: self.down_bytes - o.down_bytes,
            lost_packets: self.lost_packets - o.lost_packets,
        }
    }
}

/// Where to cut one connection: after this many bytes in a direction, the
/// link drops both ways (the bytes before the cut are delivered).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCut {
    pub up_after: Option<u64>,
    pub down_after: Option<u64>,
}

/// The proxy. Dropping it stops accepting; open connections end with their
/// peers.
pub struct LinkProxy {
    pub addr: SocketAddr,
    pub config: LinkConfig,
    counters: Arc<LinkCounters>,
    cuts: Arc<Mutex<VecDeque<LinkCut>>>,
}

impl LinkProxy {
    /// Starts a proxy to `target` shaped as `config`.
    pub fn start(target: SocketAddr, config: LinkConfig) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(LinkCounters::default());
        let cuts: Arc<Mutex<VecDeque<LinkCut>>> = Arc::default();
        let (c, q) = (counters.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let accepted = Instant::now();
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                c.connections.fetch_add(1, Ordering::Relaxed);
                let cut = q.lock().map(|mut q| q.pop_front()).ok().flatten();
                let cut = cut.unwrap_or_default();
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                // The client's first bytes leave after the handshake's round trip.
                direction(
                    client,
                    server,
                    config,
                    config.up_bps,
                    accepted + config.rtt(),
                    cut.up_after,
                    c.clone(),
                    true,
                );
                direction(
                    s2,
                    c2,
                    config,
                    config.down_bps,
                    accepted,
                    cut.down_after,
                    c.clone(),
                    false,
                );
            }
        });
        Ok(LinkProxy {
            addr,
            config,
            counters,
            cuts,
        })
    }

    /// Cuts the next connection as `cut` says.
    pub fn cut_next(&self, cut: LinkCut) {
        if let Ok(mut q) = self.cuts.lock() {
            q.push_back(cut);
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            connections: c.connections.load(Ordering::Relaxed),
            up_bytes: c.up_bytes.load(Ordering::Relaxed),
            down_bytes: c.down_bytes.load(Ordering::Relaxed),
            lost_packets: c.lost_packets.load(Ordering::Relaxed),
        }
    }
}

/// A tiny xorshift generator for loss decisions (no global randomness).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of one connection: a reader stamping packets, a writer
/// delivering them at their time.
#[allow(clippy::too_many_arguments)]
fn direction(
    mut from: TcpStream,
    mut to: TcpStream,
    config: LinkConfig,
    bps: u64,
    available_from: Instant,
    cut_after: Option<u64>,
    counters: Arc<LinkCounters>,
    up: bool,
) {
    // (arrival time, bytes; empty = the end, with whether the link was cut)
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>, bool)>();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(1)
        ^ if up { 0x9e37 } else { 0x7f4a };
    let source = from.try_clone();
    let reader_counters = counters.clone();
    std::thread::spawn(move || {
        let mut rng = Rng(seed | 1);
        let mut link_free = available_from;
        let mut last_arrival = available_from;
        let mut carried = 0u64;
        let mut buf = vec![0u8; MSS];
        let mut was_cut = false;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let allowed = cut_after.map_or(n as u64, |l| (n as u64).min(l - carried.min(l)));
            let packet = buf[..allowed as usize].to_vec();
            carried += allowed;
            let start = link_free.max(Instant::now());
            link_free = start + LinkConfig::transmit(allowed, bps);
            let mut arrival = link_free + config.delay;
            if config.loss > 0.0 && rng.next_f64() < config.loss {
                reader_counters.lost_packets.fetch_add(1, Ordering::Relaxed);
                arrival += config.rto;
            }
            // In order: a late packet holds up the ones behind it.
            arrival = arrival.max(last_arrival);
            last_arrival = arrival;
            if !packet.is_empty() && tx.send((arrival, packet, false)).is_err() {
                break;
            }
            if cut_after.is_some_and(|l| carried >= l) {
                was_cut = true;
                break;
            }
        }
        // Closing: the end of the stream (or the cut) travels like a packet.
        let end = last_arrival.max(link_free + config.delay);
        let _ = tx.send((end, Vec::new(), was_cut));
    });
    std::thread::spawn(move || {
        let counter = if up {
            &counters.up_bytes
        } else {
            &counters.down_bytes
        };
        let mut cut = false;
        for (at, packet, end_by_cut) in rx {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if packet.is_empty() {
                cut = end_by_cut;
                break;
            }
            if to.write_all(&packet).is_err() {
                break;
            }
            counter.fetch_add(packet.len() as u64, Ordering::Relaxed);
        }
        if cut {
            // A cut link: both ends see the connection die.
            let _ = to.shutdown(Shutdown::Both);
            if let Ok(source) = &source {
                let _ = source.shutdown(Shutdown::Both);
            }
        } else {
            // The sender finished: pass the half-close on.
            let _ = to.shutdown(Shutdown::Write);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                std::thread::spawn(move || {
                    let mut all = Vec::new();
                    let _ = s.read_to_end(&mut all);
                    let _ = s.write_all(&all);
                });
            }
        });
        addr
    }

    fn fast() -> LinkConfig {
        LinkConfig::symmetric(50_000, Duration::from_millis(2))
    }

    #[test]
    fn bytes_cross_intact_and_are_counted() {
        let proxy = LinkProxy::start(echo_server(), fast()).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let st = proxy.stats();
        assert_eq!((st.connections, st.up_bytes), (1, 100_000));
        // The last packet is counted just after it is written.
        for _ in 0..100 {
            if proxy.stats().down_bytes == 100_000 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proxy.stats().down_bytes, 100_000);
    }

    #[test]
    fn a_cut_delivers_exactly_the_bytes_before_it() {
        let proxy = LinkProxy::start(echo_server(), fast()).unwrap();
        proxy.cut_next(LinkCut {
            up_after: Some(3000),
            down_after: None,
        });
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        let _ = s.write_all(&[1u8; 10_000]);
        let _ = s.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        assert_eq!(proxy.stats().up_bytes, 3000);
        assert!(back.len() <= 3000);
        // The next connection is whole again.
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.write_all(&[2u8; 5000]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, vec![2u8; 5000]);
    }

    #[test]
    fn lost_packets_are_late_not_missing() {
        let mut cfg = fast();
        cfg.loss = 0.3;
        cfg.rto = Duration::from_millis(1);
        let proxy = LinkProxy::start(echo_server(), cfg).unwrap();
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(proxy.stats().lost_packets > 0);
    }

    #[test]
    fn transmit_time_is_bytes_over_rate() {
        assert_eq!(LinkConfig::transmit(8000, 64_000), Duration::from_secs(1));
        let c = LinkConfig::symmetric(64, Duration::from_millis(600));
        assert_eq!(
            (c.up_bps, c.delay, c.rtt()),
            (
                64_000,
                Duration::from_millis(300),
                Duration::from_millis(600)
            )
        );
    }
}
