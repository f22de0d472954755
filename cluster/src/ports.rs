//! Choosing the three loopback ports of a member: predictable ones from a base port, or
//! free ones below the kernel's ephemeral range (where outgoing connections could take
//! them before the member binds them). Free ports are held open until all of a member's
//! ports are chosen, and never handed out twice by one process, so parallel clusters do
//! not collide.

use std::net::TcpListener;

use crate::error::{ClusterError, Result};

/// How far apart the port blocks of consecutive members are with `--base-port`: member
/// `nK` uses base + 10(K-1) for clients, +1 for peers, +2 for metrics, like etcd's
/// 2379/2380/2381.
pub const PORT_STRIDE_PER_MEMBER: u16 = 10;

/// The ports of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberPorts {
    /// etcd gRPC API.
    pub client: u16,
    /// Raft peer RPCs.
    pub peer: u16,
    /// Admin HTTP.
    pub metrics: u16,
}

/// The ports of the member with 1-based `number`: from `base_port` if given (checked to
/// be free), else free ports not in `taken`.
pub fn choose_member_ports(
    base_port: Option<u16>,
    number: u32,
    taken: &[u16],
) -> Result<MemberPorts> {
    match base_port {
        Some(base) => ports_from_base(base, number),
        None => free_ports(taken),
    }
}

fn ports_from_base(base: u16, number: u32) -> Result<MemberPorts> {
    let offset = u32::from(PORT_STRIDE_PER_MEMBER) * number.saturating_sub(1);
    let port = |extra: u32| -> Result<u16> {
        u16::try_from(u32::from(base) + offset + extra).map_err(|_| {
            ClusterError::InvalidSpec(format!(
                "--base-port {base} leaves no room for member n{number}; choose a lower one"
            ))
        })
    };
    let ports = MemberPorts {
        client: port(0)?,
        peer: port(1)?,
        metrics: port(2)?,
    };
    for p in [ports.client, ports.peer, ports.metrics] {
        if TcpListener::bind(("127.0.0.1", p)).is_err() {
            return Err(ClusterError::PortInUse { port: p });
        }
    }
    Ok(ports)
}

/// Lowest port tried for a free one.
const FREE_PORT_MIN: u16 = 10_000;
/// Candidates tried before giving up.
const FREE_PORT_ATTEMPTS: usize = 256;

/// Ports handed out by this process, never handed out twice: several clusters started at
/// once (parallel tests) must not be given the same free port.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// The first port of the kernel's ephemeral range: ports from there on are what outgoing
/// connections (the members' own, among others) take, so a port chosen there can be
/// gone by the time the member binds it.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A pseudo-random sequence seeded from the clock and the process id; good enough to
/// spread candidates, not for anything secret.
fn candidates() -> impl Iterator<Item = u16> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let top = ephemeral_start().max(FREE_PORT_MIN + 1000);
    let span = u64::from(top - FREE_PORT_MIN);
    let mut state = seed | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        FREE_PORT_MIN + (state % span) as u16
    })
}

fn free_ports(taken: &[u16]) -> Result<MemberPorts> {
    let chosen = free_loopback_ports(3, taken)?;
    Ok(MemberPorts {
        client: chosen[0],
        peer: chosen[1],
        metrics: chosen[2],
    })
}

/// `count` distinct loopback ports that are free now, below the kernel's ephemeral range,
/// not in `taken`, and never handed out before by this process.
///
/// Exists for anything that starts servers on ports it picks (tests, benchmarks): a port
/// the kernel hands out for `127.0.0.1:0` lies in the ephemeral range, where the very
/// members being started can take it as the source port of an outgoing connection before
/// the server binds it, and the start then fails with "address in use".
pub fn free_loopback_ports(count: usize, taken: &[u16]) -> Result<Vec<u16>> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    // Holding every listener until the end keeps the ports distinct.
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    let attempts = FREE_PORT_ATTEMPTS.max(count * 8);
    for port in candidates().take(attempts) {
        if chosen.len() == count {
            break;
        }
        if taken.contains(&port) || handed_out.contains(&port) || chosen.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            chosen.push(port);
            held.push(listener);
        }
    }
    if chosen.len() < count {
        return Err(ClusterError::NoFreePort {
            source: std::io::Error::other(format!(
                "no {count} free ports found among {attempts} tried below {}",
                ephemeral_start()
            )),
        });
    }
    handed_out.extend(&chosen);
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_avoid_taken_ones() {
        let first = choose_member_ports(None, 1, &[]).unwrap();
        let taken = [first.client, first.peer, first.metrics];
        let second = choose_member_ports(None, 2, &taken).unwrap();
        for p in [second.client, second.peer, second.metrics] {
            assert!(!taken.contains(&p));
        }
        assert_ne!(second.client, second.peer);
        assert_ne!(second.peer, second.metrics);
    }

    #[test]
    fn free_loopback_ports_lie_below_the_ephemeral_range_and_are_never_repeated() {
        let first = free_loopback_ports(5, &[]).unwrap();
        let second = free_loopback_ports(5, &[]).unwrap();
        let all: std::collections::BTreeSet<u16> = first.iter().chain(&second).copied().collect();
        assert_eq!(all.len(), 10, "{first:?} {second:?}");
        let top = ephemeral_start().max(FREE_PORT_MIN + 1000);
        assert!(
            all.iter().all(|p| (FREE_PORT_MIN..top).contains(p)),
            "{all:?}"
        );
    }

    #[test]
    fn base_ports_are_laid_out_per_member_and_checked() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = holder.local_addr().unwrap().port();
        let err = choose_member_ports(Some(busy), 1, &[]).unwrap_err();
        assert!(matches!(err, ClusterError::PortInUse { port } if port == busy));
        assert!(choose_member_ports(Some(65_530), 2, &[]).is_err());
    }
}
