//! `Display` for the types openraft logs: openraft requires it of application data, and a
//! one-line summary keeps log lines short where `Debug` would print whole values.

use std::fmt;

use crate::raft::{Command, command::Op};

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match &self.op {
            None => "none",
            Some(Op::Put(_)) => "put",
            Some(Op::DeleteRange(_)) => "delete_range",
            Some(Op::Txn(_)) => "txn",
            Some(Op::Compaction(_)) => "compaction",
            Some(Op::LeaseGrant(_)) => "lease_grant",
            Some(Op::LeaseRevoke(_)) => "lease_revoke",
            Some(Op::OpenSession(_)) => "open_session",
            Some(Op::CloseSession(_)) => "close_session",
            Some(Op::Alarm(_)) => "alarm",
        };
        write!(
            f,
            "{op}(session={}, seq={})",
            self.session_id, self.sequence
        )
    }
}
