//! `-w fields`: one `"Field" : value` line per field, strings Go-quoted, as etcdctl
//! 3.4's fields printer writes them (easy to pick apart with grep and cut).

use std::fmt::Write as _;

use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader};
use vane_proto::mvccpb::KeyValue;
use vane_proto::mvccpb::event::EventType;

use super::super::go_text::{format_duration, quote};
use super::Report;

/// The fields rendering of `report` (never a member change: those are refused earlier).
pub(super) fn render(report: &Report<'_>) -> String {
    let mut out = String::new();
    let o = &mut out;
    match *report {
        Report::Get { response, .. } => get(o, response),
        Report::Put(response) => put(o, response),
        Report::Delete(response) => delete(o, response),
        Report::Txn(response) => {
            header(o, response.header.as_ref());
            field(o, "Succeeded", response.succeeded);
            for op in &response.responses {
                match &op.response {
                    Some(Response::ResponseRange(r)) => get(o, r),
                    Some(Response::ResponsePut(r)) => put(o, r),
                    Some(Response::ResponseDeleteRange(r)) => delete(o, r),
                    Some(Response::ResponseTxn(_)) | None => {
                        field(o, "Unknown", quote(format!("{op:?}").as_bytes()))
                    }
                }
            }
        }
        Report::Watch(response) => {
            header(o, response.header.as_ref());
            for event in &response.events {
                let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Put);
                field(o, "Type", kind.as_str_name());
                if let Some(prev) = &event.prev_kv {
                    key_value(o, "Prev", prev);
                }
                key_value(o, "", event.kv.as_ref().unwrap_or(&KeyValue::default()));
            }
        }
        Report::Compaction { revision } => {
            let _ = writeln!(o, "compacted revision {revision}");
        }
        Report::SnapshotSaved { path } => {
            let _ = writeln!(o, "Snapshot saved at {path}");
        }
        Report::LeaseGrant(r) => {
            header(o, r.header.as_ref());
            field(o, "ID", r.id);
            field(o, "TTL", r.ttl);
        }
        Report::LeaseRevoke { response, .. } => header(o, response.header.as_ref()),
        Report::LeaseKeepAlive(r) => {
            header(o, r.header.as_ref());
            field(o, "ID", r.id);
            field(o, "TTL", r.ttl);
        }
        Report::LeaseTimeToLive { response: r, .. } => {
            header(o, r.header.as_ref());
            field(o, "ID", r.id);
            field(o, "TTL", r.ttl);
            field(o, "GrantedTTL", r.granted_ttl);
            for key in &r.keys {
                field(o, "Key", quote(key));
            }
        }
        Report::LeaseList(r) => {
            header(o, r.header.as_ref());
            for lease in &r.leases {
                field(o, "ID", lease.id);
            }
        }
        Report::MemberList(r) => {
            header(o, r.header.as_ref());
            for m in &r.members {
                field(o, "ID", m.id);
                field(o, "Name", quote(m.name.as_bytes()));
                for url in &m.peer_ur_ls {
                    field(o, "PeerURL", quote(url.as_bytes()));
                }
                for url in &m.client_ur_ls {
                    field(o, "ClientURL", quote(url.as_bytes()));
                }
                field(o, "IsLearner", m.is_learner);
                o.push('\n');
            }
        }
        Report::EndpointStatus(statuses) => {
            for s in statuses {
                let r = &s.status;
                header(o, r.header.as_ref());
                field(o, "Version", quote(r.version.as_bytes()));
                field(o, "DBSize", r.db_size);
                field(o, "Leader", r.leader);
                field(o, "IsLearner", r.is_learner);
                field(o, "RaftIndex", r.raft_index);
                field(o, "RaftTerm", r.raft_term);
                field(o, "RaftAppliedIndex", r.raft_applied_index);
                field(o, "Errors", format!("[{}]", r.errors.join(" ")));
                field(o, "Endpoint", quote(s.endpoint.as_bytes()));
                o.push('\n');
            }
        }
        Report::EndpointHealth(healths) => {
            for h in healths {
                field(o, "Endpoint", quote(h.endpoint.as_bytes()));
                field(o, "Health", h.healthy);
                field(o, "Took", format_duration(h.took));
                field(o, "Error", &h.error);
                o.push('\n');
            }
        }
        Report::AuthToggled { enabled } => o.push_str(&super::auth_toggled(enabled)),
        Report::AuthChanged { header: h, .. } => header(o, h),
        Report::RoleGet { response: r, .. } => {
            header(o, r.header.as_ref());
            for perm in &r.perm {
                // etcdctl prints this one with Println, hence two spaces.
                let _ = writeln!(o, "\"PermType\" :  {}", perm_type_name(perm.perm_type));
                field(o, "Key", quote(&perm.key));
                field(o, "RangeEnd", quote(&perm.range_end));
            }
        }
        Report::RoleList(r) => {
            header(o, r.header.as_ref());
            o.push_str("\"Roles\" :");
            for role in &r.roles {
                o.push(' ');
                o.push_str(&quote(role.as_bytes()));
            }
            o.push('\n');
        }
        Report::MemberAdd { .. }
        | Report::MemberRemove { .. }
        | Report::MemberUpdate { .. }
        | Report::MemberPromote { .. }
        | Report::AuthStatus(_)
        | Report::UserGet { .. }
        | Report::UserList(_)
        | Report::Namespace { .. }
        | Report::NamespaceList(_)
        | Report::Validated { .. }
        | Report::Change { .. }
        | Report::ChangeList(_)
        | Report::AuditList(_)
        | Report::AuditVerified(_)
        | Report::Impact(_) => {}
    }
    out
}

/// etcd's name of a permission type (`READ`, `WRITE`, `READWRITE`).
fn perm_type_name(perm_type: i32) -> String {
    vane_proto::authpb::permission::Type::try_from(perm_type)
        .map_or_else(|_| perm_type.to_string(), |t| t.as_str_name().to_string())
}

/// `"Name" : value`; Go's `fmt.Println` puts one space between the two, so an empty
/// value still leaves `"Name" : `.
fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "\"{name}\" : {value}");
}

fn header(out: &mut String, h: Option<&ResponseHeader>) {
    let h = h.cloned().unwrap_or_default();
    field(out, "ClusterID", h.cluster_id);
    field(out, "MemberID", h.member_id);
    field(out, "Revision", h.revision);
    field(out, "RaftTerm", h.raft_term);
}

fn key_value(out: &mut String, prefix: &str, kv: &KeyValue) {
    field(out, &format!("{prefix}Key"), quote(&kv.key));
    field(out, &format!("{prefix}CreateRevision"), kv.create_revision);
    field(out, &format!("{prefix}ModRevision"), kv.mod_revision);
    field(out, &format!("{prefix}Version"), kv.version);
    field(out, &format!("{prefix}Value"), quote(&kv.value));
    field(out, &format!("{prefix}Lease"), kv.lease);
}

fn get(out: &mut String, r: &RangeResponse) {
    header(out, r.header.as_ref());
    for kv in &r.kvs {
        key_value(out, "", kv);
    }
    field(out, "More", r.more);
    field(out, "Count", r.count);
}

fn put(out: &mut String, r: &PutResponse) {
    header(out, r.header.as_ref());
    if let Some(prev) = &r.prev_kv {
        key_value(out, "Prev", prev);
    }
}

fn delete(out: &mut String, r: &DeleteRangeResponse) {
    header(out, r.header.as_ref());
    field(out, "Deleted", r.deleted);
    for prev in &r.prev_kvs {
        key_value(out, "Prev", prev);
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{get_foo, header as sample_header, kv};
    use super::super::{EndpointHealth, EndpointStatus};
    use super::*;
    use std::time::Duration;
    use vane_proto::etcdserverpb::StatusResponse;

    #[test]
    fn get_matches_etcdctl() {
        let mut response = get_foo();
        response.kvs[0] = kv("foo2", "multi\nline", 3, 3, 1);
        let report = Report::Get {
            response: &response,
            value_only: false,
        };
        assert_eq!(
            render(&report),
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\
             \"Revision\" : 2\n\"RaftTerm\" : 2\n\"Key\" : \"foo2\"\n\"CreateRevision\" : 3\n\
             \"ModRevision\" : 3\n\"Version\" : 1\n\"Value\" : \"multi\\nline\"\n\"Lease\" : 0\n\
             \"More\" : false\n\"Count\" : 1\n"
        );
    }

    #[test]
    fn put_with_prev_kv_prefixes_prev() {
        let response = PutResponse {
            header: sample_header(7),
            prev_kv: Some(kv("foo", "baz", 2, 6, 3)),
        };
        assert_eq!(
            render(&Report::Put(&response)),
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\
             \"Revision\" : 7\n\"RaftTerm\" : 2\n\"PrevKey\" : \"foo\"\n\
             \"PrevCreateRevision\" : 2\n\"PrevModRevision\" : 6\n\"PrevVersion\" : 3\n\
             \"PrevValue\" : \"baz\"\n\"PrevLease\" : 0\n"
        );
    }

    #[test]
    fn endpoints_end_each_block_with_a_blank_line() {
        let healths = [EndpointHealth {
            endpoint: "127.0.0.1:23790".into(),
            healthy: true,
            took: Duration::from_nanos(1_183_689),
            error: String::new(),
        }];
        assert_eq!(
            render(&Report::EndpointHealth(&healths)),
            "\"Endpoint\" : \"127.0.0.1:23790\"\n\"Health\" : true\n\"Took\" : 1.183689ms\n\
             \"Error\" : \n\n"
        );
        let statuses = [EndpointStatus {
            endpoint: "127.0.0.1:23790".into(),
            status: StatusResponse {
                header: sample_header(33),
                version: "3.4.23".into(),
                db_size: 24576,
                leader: 3319814642761637952,
                raft_index: 74,
                raft_term: 2,
                raft_applied_index: 74,
                ..Default::default()
            },
        }];
        assert_eq!(
            render(&Report::EndpointStatus(&statuses)),
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\
             \"Revision\" : 33\n\"RaftTerm\" : 2\n\"Version\" : \"3.4.23\"\n\"DBSize\" : 24576\n\
             \"Leader\" : 3319814642761637952\n\"IsLearner\" : false\n\"RaftIndex\" : 74\n\
             \"RaftTerm\" : 2\n\"RaftAppliedIndex\" : 74\n\"Errors\" : []\n\
             \"Endpoint\" : \"127.0.0.1:23790\"\n\n"
        );
    }
}
