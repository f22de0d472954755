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
            Some(Op::AuthEnable(_)) => "auth_enable",
            Some(Op::AuthDisable(_)) => "auth_disable",
            Some(Op::AuthUserAdd(_)) => "auth_user_add",
            Some(Op::AuthUserDelete(_)) => "auth_user_delete",
            Some(Op::AuthUserChangePassword(_)) => "auth_user_change_password",
            Some(Op::AuthUserGrantRole(_)) => "auth_user_grant_role",
            Some(Op::AuthUserRevokeRole(_)) => "auth_user_revoke_role",
            Some(Op::AuthRoleAdd(_)) => "auth_role_add",
            Some(Op::AuthRoleDelete(_)) => "auth_role_delete",
            Some(Op::AuthRoleGrantPermission(_)) => "auth_role_grant_permission",
            Some(Op::AuthRoleRevokePermission(_)) => "auth_role_revoke_permission",
            Some(Op::NamespaceChange(_)) => "namespace_change",
            Some(Op::NamespaceDelete(_)) => "namespace_delete",
            Some(Op::ChangeCreate(_)) => "change_create",
            Some(Op::ChangeAction(_)) => "change_action",
        };
        write!(
            f,
            "{op}(session={}, seq={})",
            self.session_id, self.sequence
        )
    }
}
