//! What a verb prints, in etcdctl 3.4's four formats (`-w simple|json|fields|table`).
//!
//! A verb describes its result as a [`Report`] and [`Printer::render`] turns it into
//! bytes; one file per format (`simple.rs`, `json.rs`, `fields.rs`, `table.rs`) holds
//! one `match` over the reports, the way etcdctl keeps one printer per format. The
//! formats a report does not support fail as etcdctl's do (`Error: table not supported
//! as output format`, exit 4), but before the verb touches the cluster.

mod fields;
mod json;
mod simple;
mod table;

use std::time::Duration;

use clap::ValueEnum;
use vane_proto::api::{
    ChangeResponse, ListAuditResponse, ListChangesResponse, ListNamespacesResponse,
    NamespaceResponse, ValidateValueResponse, VerifyAuditResponse,
};
use vane_proto::etcdserverpb::{
    AuthRoleGetResponse, AuthRoleListResponse, AuthStatusResponse, AuthUserGetResponse,
    AuthUserListResponse, ResponseHeader,
};
use vane_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, MemberAddResponse, MemberListResponse,
    MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse, PutResponse, RangeResponse,
    StatusResponse, TxnResponse, WatchResponse,
};

use super::exit::{CliError, Exit};
use super::go_text;

/// `-w/--write-out`: etcdctl's output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines (keys and values as they are).
    Simple,
    /// etcd's JSON: protobuf field names, ids as numbers, keys and values in base64.
    Json,
    /// `"Field" : value` lines, one per field.
    Fields,
    /// An ASCII table (member list, endpoint status and health).
    Table,
}

impl OutputFormat {
    fn name(self) -> &'static str {
        match self {
            OutputFormat::Simple => "simple",
            OutputFormat::Json => "json",
            OutputFormat::Fields => "fields",
            OutputFormat::Table => "table",
        }
    }
}

/// One endpoint's answer to `endpoint status` (etcdctl's `epStatus`).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointStatus {
    /// The endpoint as the user named it (or as MemberList lists it with `--cluster`).
    pub endpoint: String,
    /// Its Status answer.
    pub status: StatusResponse,
}

/// One endpoint's answer to `endpoint health` (etcdctl's `epHealth`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The endpoint as the user named it.
    pub endpoint: String,
    /// Whether a linearizable read through it succeeded and no alarm is raised.
    pub healthy: bool,
    /// How long the check took.
    pub took: Duration,
    /// Why it is unhealthy; empty when healthy.
    pub error: String,
}

/// A verb's result, as the printers need it.
#[derive(Clone, Copy, Debug)]
pub enum Report<'a> {
    /// `get`; `value_only` is `--print-value-only`.
    Get {
        /// The Range answer.
        response: &'a RangeResponse,
        /// Print values without keys.
        value_only: bool,
    },
    /// `put`.
    Put(&'a PutResponse),
    /// `del`.
    Delete(&'a DeleteRangeResponse),
    /// `txn`.
    Txn(&'a TxnResponse),
    /// One response of `watch`.
    Watch(&'a WatchResponse),
    /// `compaction`.
    Compaction {
        /// The revision compacted to.
        revision: i64,
    },
    /// `lease grant`.
    LeaseGrant(&'a LeaseGrantResponse),
    /// `lease revoke`.
    LeaseRevoke {
        /// The lease revoked.
        id: i64,
        /// The answer.
        response: &'a LeaseRevokeResponse,
    },
    /// `lease keep-alive`, one answer.
    LeaseKeepAlive(&'a LeaseKeepAliveResponse),
    /// `lease timetolive`.
    LeaseTimeToLive {
        /// The answer.
        response: &'a LeaseTimeToLiveResponse,
        /// Whether `--keys` was asked for.
        keys: bool,
    },
    /// `lease list`.
    LeaseList(&'a LeaseLeasesResponse),
    /// `member add`; the simple format also prints the new member's start-up settings.
    MemberAdd {
        /// The answer.
        response: &'a MemberAddResponse,
        /// The name the new member must start with.
        name: &'a str,
        /// `name=peer-url,...` of every member including the new one (the value of
        /// `--initial-cluster` for the new member); `None` if the list could not be read.
        initial_cluster: Option<&'a str>,
    },
    /// `member remove`.
    MemberRemove {
        /// The member removed.
        id: u64,
        /// The answer.
        response: &'a MemberRemoveResponse,
    },
    /// `member update`.
    MemberUpdate {
        /// The member updated.
        id: u64,
        /// The answer.
        response: &'a MemberUpdateResponse,
    },
    /// `member promote`.
    MemberPromote {
        /// The member promoted.
        id: u64,
        /// The answer.
        response: &'a MemberPromoteResponse,
    },
    /// `member list`.
    MemberList(&'a MemberListResponse),
    /// `endpoint status`.
    EndpointStatus(&'a [EndpointStatus]),
    /// `endpoint health`.
    EndpointHealth(&'a [EndpointHealth]),
    /// `snapshot save`.
    SnapshotSaved {
        /// Where the snapshot was written.
        path: &'a str,
    },
    /// `auth enable` and `auth disable`: one line in every format, as etcdctl prints it.
    AuthToggled {
        /// Whether auth is now on.
        enabled: bool,
    },
    /// `auth status` (etcdctl 3.5's verb).
    AuthStatus(&'a AuthStatusResponse),
    /// A user or role change whose answer is only a header (`user add|delete|passwd|
    /// grant-role|revoke-role`, `role add|delete|grant-permission|revoke-permission`).
    AuthChanged {
        /// The answer's header.
        header: Option<&'a ResponseHeader>,
        /// What the simple format prints, in etcdctl's words ("User alice created").
        done: &'a str,
    },
    /// `user get` without `--detail`.
    UserGet {
        /// The user asked about.
        name: &'a str,
        /// The answer.
        response: &'a AuthUserGetResponse,
    },
    /// `user list`.
    UserList(&'a AuthUserListResponse),
    /// `role get`, also once per role in `user get --detail`.
    RoleGet {
        /// The role asked about.
        name: &'a str,
        /// The answer.
        response: &'a AuthRoleGetResponse,
    },
    /// `role list`.
    RoleList(&'a AuthRoleListResponse),
    /// `ns get`, and `ns create|update|delete` (which name what they did).
    Namespace {
        /// "created", "updated", "deleted", or `None` for `ns get`.
        done: Option<&'a str>,
        /// The answer.
        response: &'a NamespaceResponse,
    },
    /// `ns list`.
    NamespaceList(&'a ListNamespacesResponse),
    /// `cr create|approve|reject|cancel|rebase|break-glass|get`; `detail` for `get`.
    Change {
        /// The answer.
        response: &'a ChangeResponse,
        /// Print the operations and approvals too.
        detail: bool,
    },
    /// `cr list`.
    ChangeList(&'a ListChangesResponse),
    /// `audit list` and `history`.
    AuditList(&'a ListAuditResponse),
    /// `audit verify`.
    AuditVerified(&'a VerifyAuditResponse),
    /// `schema validate`.
    Validated {
        /// The key checked.
        key: &'a [u8],
        /// The answer.
        response: &'a ValidateValueResponse,
    },
    /// `impact`.
    Impact(&'a vane_proto::api::ImpactResponse),
}

/// Which report, without its data: what the format check before a verb runs needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// See [`Report::Get`].
    Get,
    /// See [`Report::Put`].
    Put,
    /// See [`Report::Delete`].
    Delete,
    /// See [`Report::Txn`].
    Txn,
    /// See [`Report::Watch`].
    Watch,
    /// See [`Report::Compaction`].
    Compaction,
    /// See [`Report::LeaseGrant`].
    LeaseGrant,
    /// See [`Report::LeaseRevoke`].
    LeaseRevoke,
    /// See [`Report::LeaseKeepAlive`].
    LeaseKeepAlive,
    /// See [`Report::LeaseTimeToLive`].
    LeaseTimeToLive,
    /// See [`Report::LeaseList`].
    LeaseList,
    /// See [`Report::MemberAdd`].
    MemberAdd,
    /// See [`Report::MemberRemove`].
    MemberRemove,
    /// See [`Report::MemberUpdate`].
    MemberUpdate,
    /// See [`Report::MemberPromote`].
    MemberPromote,
    /// See [`Report::MemberList`].
    MemberList,
    /// See [`Report::EndpointStatus`].
    EndpointStatus,
    /// See [`Report::EndpointHealth`].
    EndpointHealth,
    /// See [`Report::SnapshotSaved`].
    SnapshotSaved,
    /// See [`Report::AuthToggled`].
    AuthToggled,
    /// See [`Report::AuthStatus`].
    AuthStatus,
    /// See [`Report::AuthChanged`].
    AuthChanged,
    /// See [`Report::UserGet`].
    UserGet,
    /// See [`Report::UserList`].
    UserList,
    /// See [`Report::RoleGet`].
    RoleGet,
    /// See [`Report::RoleList`].
    RoleList,
    /// See [`Report::Namespace`].
    Namespace,
    /// See [`Report::NamespaceList`].
    NamespaceList,
    /// See [`Report::Validated`].
    Validated,
    /// See [`Report::Change`].
    Change,
    /// See [`Report::ChangeList`].
    ChangeList,
    /// See [`Report::AuditList`].
    AuditList,
    /// See [`Report::AuditVerified`].
    AuditVerified,
    /// See [`Report::Impact`].
    Impact,
}

impl Report<'_> {
    /// Which report this is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Get { .. } => ReportKind::Get,
            Report::Put(_) => ReportKind::Put,
            Report::Delete(_) => ReportKind::Delete,
            Report::Txn(_) => ReportKind::Txn,
            Report::Watch(_) => ReportKind::Watch,
            Report::Compaction { .. } => ReportKind::Compaction,
            Report::LeaseGrant(_) => ReportKind::LeaseGrant,
            Report::LeaseRevoke { .. } => ReportKind::LeaseRevoke,
            Report::LeaseKeepAlive(_) => ReportKind::LeaseKeepAlive,
            Report::LeaseTimeToLive { .. } => ReportKind::LeaseTimeToLive,
            Report::LeaseList(_) => ReportKind::LeaseList,
            Report::MemberAdd { .. } => ReportKind::MemberAdd,
            Report::MemberRemove { .. } => ReportKind::MemberRemove,
            Report::MemberUpdate { .. } => ReportKind::MemberUpdate,
            Report::MemberPromote { .. } => ReportKind::MemberPromote,
            Report::MemberList(_) => ReportKind::MemberList,
            Report::EndpointStatus(_) => ReportKind::EndpointStatus,
            Report::EndpointHealth(_) => ReportKind::EndpointHealth,
            Report::SnapshotSaved { .. } => ReportKind::SnapshotSaved,
            Report::AuthToggled { .. } => ReportKind::AuthToggled,
            Report::AuthStatus(_) => ReportKind::AuthStatus,
            Report::AuthChanged { .. } => ReportKind::AuthChanged,
            Report::UserGet { .. } => ReportKind::UserGet,
            Report::UserList(_) => ReportKind::UserList,
            Report::RoleGet { .. } => ReportKind::RoleGet,
            Report::RoleList(_) => ReportKind::RoleList,
            Report::Namespace { .. } => ReportKind::Namespace,
            Report::NamespaceList(_) => ReportKind::NamespaceList,
            Report::Validated { .. } => ReportKind::Validated,
            Report::Change { .. } => ReportKind::Change,
            Report::ChangeList(_) => ReportKind::ChangeList,
            Report::AuditList(_) => ReportKind::AuditList,
            Report::AuditVerified(_) => ReportKind::AuditVerified,
            Report::Impact(_) => ReportKind::Impact,
        }
    }
}

/// The output settings of one invocation: `-w` and `--hex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Printer {
    /// `-w/--write-out`.
    pub format: OutputFormat,
    /// `--hex`: keys and values as `\xNN` escapes (simple format only, as in etcdctl).
    pub hex: bool,
}

impl Printer {
    /// Fails as etcdctl does when this format cannot print `kind`; verbs call it before
    /// they change anything, so a typo in `-w` never leaves a half-done operation.
    pub fn check_supported(&self, kind: ReportKind) -> Result<(), CliError> {
        use ReportKind as K;
        let supported = match self.format {
            OutputFormat::Simple | OutputFormat::Json => true,
            OutputFormat::Fields => !matches!(
                kind,
                K::MemberAdd
                    | K::MemberRemove
                    | K::MemberUpdate
                    | K::MemberPromote
                    | K::AuthStatus
                    | K::UserGet
                    | K::UserList
                    | K::Namespace
                    | K::NamespaceList
                    | K::Validated
                    | K::Change
                    | K::ChangeList
                    | K::AuditList
                    | K::AuditVerified
                    | K::Impact
            ),
            OutputFormat::Table => matches!(
                kind,
                K::MemberList
                    | K::EndpointStatus
                    | K::EndpointHealth
                    | K::Compaction
                    | K::SnapshotSaved
                    | K::AuthToggled
            ),
        };
        if supported {
            Ok(())
        } else {
            Err(CliError::new(
                Exit::BadFeature,
                format!("{} not supported as output format", self.format.name()),
            ))
        }
    }

    /// The bytes etcdctl would print for `report` in this format.
    pub fn render(&self, report: &Report<'_>) -> Result<Vec<u8>, CliError> {
        self.check_supported(report.kind())?;
        Ok(match self.format {
            OutputFormat::Simple => simple::render(report, self.hex),
            OutputFormat::Json => json::render(report).into_bytes(),
            OutputFormat::Fields => fields::render(report).into_bytes(),
            OutputFormat::Table => table::render(report).into_bytes(),
        })
    }
}

/// What `auth enable` and `auth disable` print, in every format.
fn auth_toggled(enabled: bool) -> String {
    if enabled {
        "Authentication Enabled\n".to_string()
    } else {
        "Authentication Disabled\n".to_string()
    }
}

/// etcdctl's member rows (shared by the simple and table formats): id, status, name,
/// peer URLs, client URLs, learner.
fn member_rows(response: &MemberListResponse) -> Vec<Vec<String>> {
    response
        .members
        .iter()
        .map(|m| {
            vec![
                format!("{:x}", m.id),
                if m.name.is_empty() {
                    "unstarted"
                } else {
                    "started"
                }
                .to_string(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

/// etcdctl's endpoint status rows (shared by the simple and table formats).
fn status_rows(statuses: &[EndpointStatus]) -> Vec<Vec<String>> {
    statuses
        .iter()
        .map(|s| {
            let member_id = s.status.header.as_ref().map_or(0, |h| h.member_id);
            vec![
                s.endpoint.clone(),
                format!("{member_id:x}"),
                s.status.version.clone(),
                go_text::humanize_bytes(u64::try_from(s.status.db_size).unwrap_or(0)),
                (s.status.leader == member_id).to_string(),
                s.status.is_learner.to_string(),
                s.status.raft_term.to_string(),
                s.status.raft_index.to_string(),
                s.status.raft_applied_index.to_string(),
                s.status.errors.join(", "),
            ]
        })
        .collect()
}

/// etcdctl's endpoint health rows (the table format).
fn health_rows(healths: &[EndpointHealth]) -> Vec<Vec<String>> {
    healths
        .iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                h.healthy.to_string(),
                go_text::format_duration(h.took),
                h.error.clone(),
            ]
        })
        .collect()
}

/// The lines `member add` prints for the new member's operator in the simple format:
/// the `vaned` settings it must start with (vaned reads `VANED_*` variables where
/// etcd reads `ETCD_*`).
fn member_add_settings(name: &str, initial_cluster: &str, peer_urls: &[String]) -> String {
    format!(
        "\nVANED_NAME={}\nVANED_INITIAL_CLUSTER={}\nVANED_INITIAL_ADVERTISE_PEER_URLS={}\n\
         VANED_INITIAL_CLUSTER_STATE=\"existing\"\n",
        go_text::quote(name.as_bytes()),
        go_text::quote(initial_cluster.as_bytes()),
        go_text::quote(peer_urls.join(",").as_bytes()),
    )
}

#[cfg(test)]
pub(crate) mod samples {
    //! Responses the printers' tests share, with the values of a real etcd session.
    use vane_proto::etcdserverpb::{RangeResponse, ResponseHeader};
    use vane_proto::mvccpb::KeyValue;

    pub const CLUSTER_ID: u64 = 324952591200643719;
    pub const MEMBER_ID: u64 = 3319814642761637952;

    pub fn header(revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: CLUSTER_ID,
            member_id: MEMBER_ID,
            revision,
            raft_term: 2,
        })
    }

    pub fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
            version,
            value: value.as_bytes().to_vec(),
            lease: 0,
        }
    }

    pub fn get_foo() -> RangeResponse {
        RangeResponse {
            header: header(2),
            kvs: vec![kv("foo", "bar", 2, 2, 1)],
            more: false,
            count: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(format: OutputFormat) -> Printer {
        Printer { format, hex: false }
    }

    #[test]
    fn unsupported_formats_fail_like_etcdctl() {
        let error = printer(OutputFormat::Table)
            .check_supported(ReportKind::Get)
            .unwrap_err();
        assert_eq!(error.exit, Exit::BadFeature);
        assert_eq!(
            error.message.as_deref(),
            Some("table not supported as output format")
        );
        let error = printer(OutputFormat::Fields)
            .check_supported(ReportKind::MemberAdd)
            .unwrap_err();
        assert_eq!(
            error.message.as_deref(),
            Some("fields not supported as output format")
        );
        assert!(
            printer(OutputFormat::Table)
                .check_supported(ReportKind::MemberList)
                .is_ok()
        );
    }

    #[test]
    fn plain_reports_print_the_same_in_every_format() {
        for format in OutputFormat::value_variants() {
            let out = printer(*format)
                .render(&Report::Compaction { revision: 7 })
                .unwrap();
            assert_eq!(out, b"compacted revision 7\n");
            let out = printer(*format)
                .render(&Report::SnapshotSaved { path: "/tmp/x.db" })
                .unwrap();
            assert_eq!(out, b"Snapshot saved at /tmp/x.db\n");
        }
    }
}
