//! Cutting links between nodes with iptables, inside the run's own network namespace.
//!
//! Every node sends its peer traffic from its own address (vaned binds outgoing peer
//! connections to the address of `--listen-peer-urls`), so a rule on source and
//! destination address cuts exactly one direction of one link. TCP needs both
//! directions, so dropping A→B stalls the connections A opened to B *and* those B opened
//! to A (their acknowledgements travel A→B); a one-way partition is still a different
//! fault from a full one, because only half the packets vanish and timers differ.
//!
//! Rules go into the namespace's INPUT chain (all traffic crosses `lo`, so every packet
//! passes INPUT once). Healing flushes that chain: the namespace is ours alone.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::error::JepsenError;

/// One rule: drop packets from one address to another, all of them or a random share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DropRule {
    /// Source address.
    pub from: Ipv4Addr,
    /// Destination address.
    pub to: Ipv4Addr,
    /// Share of packets dropped, in per mille (1000 = all).
    pub per_mille: u32,
}

impl DropRule {
    /// The iptables arguments that append this rule.
    pub fn iptables_arguments(&self) -> Vec<String> {
        let mut arguments = vec![
            "-A".to_string(),
            "INPUT".to_string(),
            "-s".to_string(),
            self.from.to_string(),
            "-d".to_string(),
            self.to.to_string(),
        ];
        if self.per_mille < 1000 {
            arguments.extend([
                "-m".to_string(),
                "statistic".to_string(),
                "--mode".to_string(),
                "random".to_string(),
                "--probability".to_string(),
                format!("{:.3}", f64::from(self.per_mille) / 1000.0),
            ]);
        }
        arguments.extend(["-j".to_string(), "DROP".to_string()]);
        arguments
    }
}

/// Appends `rules`.
pub fn apply(rules: &[DropRule]) -> Result<(), JepsenError> {
    for rule in rules {
        iptables(&rule.iptables_arguments())?;
    }
    Ok(())
}

/// Removes every rule: all links whole again.
pub fn heal() -> Result<(), JepsenError> {
    iptables(&["-F".to_string(), "INPUT".to_string()])
}

/// Checks that iptables works here, before a run depends on it.
pub fn check_available() -> Result<(), JepsenError> {
    iptables(&["-L".to_string(), "INPUT".to_string(), "-n".to_string()])
}

/// Runs iptables in the run's namespace; a failure names the command and its stderr.
pub(crate) fn iptables(arguments: &[String]) -> Result<(), JepsenError> {
    let output = Command::new("iptables")
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| JepsenError::Environment {
            what: "cannot run iptables".to_string(),
            detail: format!("{error}; install iptables"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(JepsenError::Environment {
        what: format!("`iptables {}` failed", arguments.join(" ")),
        detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_drop_has_no_statistic_match_and_a_loss_has_one() {
        let from = Ipv4Addr::new(127, 0, 0, 11);
        let to = Ipv4Addr::new(127, 0, 0, 12);
        let full = DropRule {
            from,
            to,
            per_mille: 1000,
        };
        assert_eq!(
            full.iptables_arguments().join(" "),
            "-A INPUT -s 127.0.0.11 -d 127.0.0.12 -j DROP"
        );
        let loss = DropRule {
            from,
            to,
            per_mille: 150,
        };
        assert!(
            loss.iptables_arguments()
                .join(" ")
                .contains("-m statistic --mode random --probability 0.150 -j DROP")
        );
    }
}
