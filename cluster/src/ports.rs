//! Choosing the three loopback ports of a member: predictable ones from a base port, or
//! free ones the operating system picks. Free ports are held open until all of a
//! member's ports are chosen, so that one member never gets the same port twice.

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

fn free_ports(taken: &[u16]) -> Result<MemberPorts> {
    // Holding every listener until the end keeps the three ports distinct.
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    while chosen.len() < 3 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|source| ClusterError::NoFreePort { source })?;
        let port = listener
            .local_addr()
            .map_err(|source| ClusterError::NoFreePort { source })?
            .port();
        if !taken.contains(&port) {
            chosen.push(port);
        }
        held.push(listener);
        if held.len() > 64 {
            return Err(ClusterError::NoFreePort {
                source: std::io::Error::other("the system keeps returning ports already in use"),
            });
        }
    }
    Ok(MemberPorts {
        client: chosen[0],
        peer: chosen[1],
        metrics: chosen[2],
    })
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
    fn base_ports_are_laid_out_per_member_and_checked() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = holder.local_addr().unwrap().port();
        let err = choose_member_ports(Some(busy), 1, &[]).unwrap_err();
        assert!(matches!(err, ClusterError::PortInUse { port } if port == busy));
        assert!(choose_member_ports(Some(65_530), 2, &[]).is_err());
    }
}
