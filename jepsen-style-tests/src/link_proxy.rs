//! Delay and reordering on the links between nodes: a userspace TCP proxy per directed
//! link, since this kernel has no `tc netem`.
//!
//! When a run uses the `delay` nemesis, every peer connection a node opens goes through
//! the proxy of its link before any node starts: an iptables DNAT rule in the namespace's
//! `nat OUTPUT` chain sends a connection from node A's address to node B's peer port to
//! A→B's proxy instead. The proxy opens the real connection to B *from A's own address*,
//! marked so the DNAT rule skips it, so on the wire the second leg looks exactly like a
//! direct connection: the partition and loss rules (filter `INPUT`, matched on source and
//! destination) cut it as before. The first leg (A to its proxy) is local to A.
//!
//! Each direction of each proxied connection is a queue: bytes read at time t are
//! written at t + delay + a random jitter, never before bytes read earlier (TCP delivers
//! in order, so the proxy does too). Reordering therefore happens between links and
//! between connections: a heartbeat from A can reach B after a later append from C, and
//! a reply can overtake a request sent earlier on another link, as over a real network
//! whose paths change speed. With no delay set, bytes pass straight through.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::JepsenError;
use crate::firewall::iptables;
use crate::nodes::{PEER_PORT, node_ip};

/// The address every link proxy listens on; no fault targets it.
const PROXY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 250);
/// The proxy of link A→B listens on this port plus 100·A + B.
const PROXY_PORT_BASE: u16 = 20_000;
/// The firewall mark of the proxies' own outgoing connections, which DNAT leaves alone.
const PROXY_MARK: u32 = 0x7661;
/// Largest read, in bytes: one chunk is delayed as a unit.
const CHUNK_BYTES: usize = 64 * 1024;

/// A delay on one direction of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkDelay {
    /// Every chunk waits at least this long, in milliseconds.
    pub base_ms: u64,
    /// And up to this much more, drawn per chunk, in milliseconds.
    pub jitter_ms: u64,
}

impl LinkDelay {
    fn draw(self) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=self.jitter_ms)
        };
        Duration::from_millis(self.base_ms + jitter)
    }
}

/// The delays in force, by (sender slot, receiver slot).
type Delays = Arc<Mutex<HashMap<(usize, usize), LinkDelay>>>;

/// The proxies of every directed link of a run, and the delays they apply.
#[derive(Clone)]
pub struct LinkProxies {
    delays: Delays,
}

impl std::fmt::Debug for LinkProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkProxies").finish_non_exhaustive()
    }
}

fn proxy_port(from: usize, to: usize) -> u16 {
    let offset = u16::try_from(100 * from + to).unwrap_or(u16::MAX - PROXY_PORT_BASE);
    PROXY_PORT_BASE.saturating_add(offset)
}

/// The iptables arguments of the DNAT rule that sends `from`'s peer connections to `to`
/// through their proxy.
fn dnat_arguments(from: usize, to: usize) -> Vec<String> {
    [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "-s",
        &node_ip(from).to_string(),
        "-d",
        &node_ip(to).to_string(),
        "--dport",
        &PEER_PORT.to_string(),
        "-m",
        "mark",
        "!",
        "--mark",
        &format!("{PROXY_MARK:#x}"),
        "-j",
        "DNAT",
        "--to-destination",
        &format!("{PROXY_IP}:{}", proxy_port(from, to)),
    ]
    .iter()
    .map(|part| part.to_string())
    .collect()
}

impl LinkProxies {
    /// Starts a proxy for every directed link between `nodes` nodes and routes the peer
    /// connections through them. Must run inside the run's namespace, before any node
    /// starts (connections opened earlier would bypass the proxies).
    pub async fn start(nodes: usize) -> Result<LinkProxies, JepsenError> {
        let delays: Delays = Arc::default();
        for from in 1..=nodes {
            for to in (1..=nodes).filter(|&to| to != from) {
                let listen = SocketAddrV4::new(PROXY_IP, proxy_port(from, to));
                let listener =
                    TcpListener::bind(listen)
                        .await
                        .map_err(|error| JepsenError::Environment {
                            what: format!("cannot bind the link proxy {listen}"),
                            detail: error.to_string(),
                        })?;
                tokio::spawn(accept_loop(listener, from, to, delays.clone()));
                iptables(&dnat_arguments(from, to))?;
            }
        }
        Ok(LinkProxies { delays })
    }

    /// Delays the bytes `from` sends to `to` (on connections either of them opened).
    pub fn set(&self, from: usize, to: usize, delay: LinkDelay) {
        lock(&self.delays).insert((from, to), delay);
    }

    /// Removes every delay; bytes already queued are still delivered, in order.
    pub fn heal(&self) {
        lock(&self.delays).clear();
    }
}

fn lock(delays: &Delays) -> std::sync::MutexGuard<'_, HashMap<(usize, usize), LinkDelay>> {
    delays
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the DNAT rules; the namespace is the run's own, so the whole chain goes.
pub fn remove_rules() -> Result<(), JepsenError> {
    iptables(&["-t", "nat", "-F", "OUTPUT"].map(String::from))
}

async fn accept_loop(listener: TcpListener, from: usize, to: usize, delays: Delays) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let delays = delays.clone();
        tokio::spawn(async move {
            // A connection the proxy cannot complete is closed: the node sees a refused
            // or reset connection and retries, as it would on a real network.
            if let Ok(outbound) = connect_as(from, to).await {
                splice(inbound, outbound, from, to, delays);
            }
        });
    }
}

/// Opens the real connection to `to`'s peer port from `from`'s address, marked so that
/// the DNAT rule does not send it back to the proxy.
async fn connect_as(from: usize, to: usize) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_mark(PROXY_MARK)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&SocketAddr::from(SocketAddrV4::new(node_ip(from), 0)).into())?;
    let socket = TcpSocket::from_std_stream(socket.into());
    socket
        .connect(SocketAddr::from(SocketAddrV4::new(node_ip(to), PEER_PORT)))
        .await
}

fn splice(inbound: TcpStream, outbound: TcpStream, from: usize, to: usize, delays: Delays) {
    let _ = inbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    pump(in_read, out_write, (from, to), delays.clone());
    pump(out_read, in_write, (to, from), delays);
}

/// Copies one direction, each chunk held until its delivery time.
fn pump(
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    link: (usize, usize),
    delays: Delays,
) {
    let (chunks, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut last_delivery = Instant::now();
        loop {
            let read = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let delay = lock(&delays).get(&link).copied().unwrap_or_default();
            let delivery = (Instant::now() + delay.draw()).max(last_delivery);
            last_delivery = delivery;
            if chunks.send((delivery, buffer[..read].to_vec())).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((delivery, chunk)) = queued.recv().await {
            tokio::time::sleep_until(delivery).await;
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_directed_link_has_its_own_port_and_rule() {
        assert_ne!(proxy_port(1, 2), proxy_port(2, 1));
        assert_eq!(
            dnat_arguments(1, 2).join(" "),
            "-t nat -A OUTPUT -p tcp -s 127.0.0.11 -d 127.0.0.12 --dport 2380 -m mark ! --mark 0x7661 -j DNAT --to-destination 127.0.0.250:20102"
        );
    }

    #[test]
    fn a_delay_stays_within_its_bounds() {
        let delay = LinkDelay {
            base_ms: 100,
            jitter_ms: 50,
        };
        for _ in 0..200 {
            let drawn = delay.draw();
            assert!(drawn >= Duration::from_millis(100) && drawn <= Duration::from_millis(150));
        }
        assert_eq!(LinkDelay::default().draw(), Duration::ZERO);
    }
}
