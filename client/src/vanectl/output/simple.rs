//! `-w simple`, the default: keys and values as raw bytes on their own lines, one-line
//! summaries for everything else, as etcdctl 3.4's simple printer writes them.

use std::io::Write as _;

use vane_client::txn::prefix_range_end;
use vane_proto::api::audit_record::Path as AuditPath;
use vane_proto::api::change_request::State as ChangeState;
use vane_proto::api::{AuditRecord, ChangeRequest, Namespace};
use vane_proto::authpb::Permission;
use vane_proto::authpb::permission::Type as PermType;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{
    AuthRoleGetResponse, DeleteRangeResponse, PutResponse, RangeResponse,
};
use vane_proto::mvccpb::KeyValue;
use vane_proto::mvccpb::event::EventType;

use super::super::go_text;
use super::{Report, auth_toggled, member_add_settings, member_rows, status_rows};

/// The simple rendering of `report`. Endpoint health goes to stderr in etcdctl 3.4;
/// the caller decides where these bytes go.
pub(super) fn render(report: &Report<'_>, hex: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let o = &mut out;
    match *report {
        Report::Get {
            response,
            value_only,
        } => get(o, response, hex, value_only),
        Report::Put(response) => put(o, response, hex),
        Report::Delete(response) => delete(o, response, hex),
        Report::Txn(response) => {
            line(
                o,
                if response.succeeded {
                    "SUCCESS"
                } else {
                    "FAILURE"
                },
            );
            for op in &response.responses {
                line(o, "");
                match &op.response {
                    Some(Response::ResponseRange(r)) => get(o, r, hex, false),
                    Some(Response::ResponsePut(r)) => put(o, r, hex),
                    Some(Response::ResponseDeleteRange(r)) => delete(o, r, hex),
                    Some(Response::ResponseTxn(_)) | None => {
                        line(o, &format!("unexpected response {op:?}"))
                    }
                }
            }
        }
        Report::Watch(response) => {
            for event in &response.events {
                let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Put);
                line(o, kind.as_str_name());
                if let Some(prev) = &event.prev_kv {
                    key_value(o, prev, hex, false);
                }
                key_value(
                    o,
                    event.kv.as_ref().unwrap_or(&KeyValue::default()),
                    hex,
                    false,
                );
            }
        }
        Report::Compaction { revision } => line(o, &format!("compacted revision {revision}")),
        Report::LeaseGrant(r) => line(
            o,
            &format!("lease {:016x} granted with TTL({}s)", r.id, r.ttl),
        ),
        Report::LeaseRevoke { id, .. } => line(o, &format!("lease {id:016x} revoked")),
        Report::LeaseKeepAlive(r) => line(
            o,
            &format!("lease {:016x} keepalived with TTL({})", r.id, r.ttl),
        ),
        Report::LeaseTimeToLive { response: r, keys } => {
            if r.granted_ttl == 0 && r.ttl == -1 {
                line(o, &format!("lease {:016x} already expired", r.id));
            } else {
                let mut text = format!(
                    "lease {:016x} granted with TTL({}s), remaining({}s)",
                    r.id, r.granted_ttl, r.ttl
                );
                if keys {
                    let names: Vec<String> = r
                        .keys
                        .iter()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect();
                    text.push_str(&format!(", attached keys([{}])", names.join(" ")));
                }
                line(o, &text);
            }
        }
        Report::LeaseList(r) => {
            line(o, &format!("found {} leases", r.leases.len()));
            for lease in &r.leases {
                line(o, &format!("{:016x}", lease.id));
            }
        }
        Report::MemberAdd {
            response,
            name,
            initial_cluster,
        } => {
            let member = response.member.clone().unwrap_or_default();
            let cluster_id = response.header.as_ref().map_or(0, |h| h.cluster_id);
            line(
                o,
                &format!("Member {:16x} added to cluster {cluster_id:16x}", member.id),
            );
            if let Some(initial_cluster) = initial_cluster {
                let settings = member_add_settings(name, initial_cluster, &member.peer_ur_ls);
                o.extend_from_slice(settings.as_bytes());
            }
        }
        Report::MemberRemove { id, response } => line(
            o,
            &format!(
                "Member {id:16x} removed from cluster {:16x}",
                response.header.as_ref().map_or(0, |h| h.cluster_id)
            ),
        ),
        Report::MemberUpdate { id, response } => line(
            o,
            &format!(
                "Member {id:16x} updated in cluster {:16x}",
                response.header.as_ref().map_or(0, |h| h.cluster_id)
            ),
        ),
        Report::MemberPromote { id, response } => line(
            o,
            &format!(
                "Member {id:16x} promoted in cluster {:16x}",
                response.header.as_ref().map_or(0, |h| h.cluster_id)
            ),
        ),
        Report::MemberList(response) => {
            for row in member_rows(response) {
                line(o, &row.join(", "));
            }
        }
        Report::EndpointStatus(statuses) => {
            for row in status_rows(statuses) {
                line(o, &row.join(", "));
            }
        }
        Report::EndpointHealth(healths) => {
            for h in healths {
                if h.error.is_empty() {
                    line(
                        o,
                        &format!(
                            "{} is healthy: successfully committed proposal: took = {}",
                            h.endpoint,
                            go_text::format_duration(h.took)
                        ),
                    );
                } else {
                    line(
                        o,
                        &format!(
                            "{} is unhealthy: failed to commit proposal: {}",
                            h.endpoint, h.error
                        ),
                    );
                }
            }
        }
        Report::SnapshotSaved { path } => line(o, &format!("Snapshot saved at {path}")),
        Report::AuthToggled { enabled } => o.extend_from_slice(auth_toggled(enabled).as_bytes()),
        Report::AuthStatus(r) => {
            line(o, &format!("Authentication Status: {}", r.enabled));
            line(o, &format!("AuthRevision: {}", r.auth_revision));
        }
        Report::AuthChanged { done, .. } => line(o, done),
        Report::UserGet { name, response } => {
            line(o, &format!("User: {name}"));
            let mut roles = String::from("Roles:");
            for role in &response.roles {
                roles.push(' ');
                roles.push_str(role);
            }
            line(o, &roles);
        }
        Report::UserList(r) => r.users.iter().for_each(|user| line(o, user)),
        Report::RoleGet { name, response } => role_get(o, name, response),
        Report::RoleList(r) => r.roles.iter().for_each(|role| line(o, role)),
        Report::Namespace { done, response } => {
            let namespace = response.namespace.clone().unwrap_or_default();
            match done {
                Some(done) => line(o, &format!("Namespace {} {done}", namespace.name)),
                None => namespace_lines(o, &namespace),
            }
            if response.offending_count > 0 {
                line(
                    o,
                    &format!(
                        "{} existing value(s) do not satisfy the new schema:",
                        response.offending_count
                    ),
                );
                for key in &response.offending_keys {
                    line(o, &format!("\t{}", String::from_utf8_lossy(key)));
                }
            }
        }
        Report::NamespaceList(r) => {
            for n in &r.namespaces {
                let approvals = n.approval.as_ref().map_or(0, |a| a.approvals_required);
                let schema = if n.schema.is_empty() {
                    "no schema".to_string()
                } else {
                    format!("schema v{}", n.schema_version)
                };
                line(
                    o,
                    &format!(
                        "{}, {}, {schema}, {approvals} approvals",
                        n.name,
                        String::from_utf8_lossy(&n.prefix)
                    ),
                );
            }
        }
        Report::Change { response, detail } => {
            let change = response.change.clone().unwrap_or_default();
            line(o, &change_summary(&change));
            if detail {
                change_detail(o, &change);
            }
        }
        Report::ChangeList(r) => r.changes.iter().for_each(|c| line(o, &change_summary(c))),
        Report::AuditList(r) => r
            .records
            .iter()
            .for_each(|record| line(o, &audit_line(record))),
        Report::AuditVerified(r) => {
            if r.intact {
                line(
                    o,
                    &format!("audit intact: {} records, hash chain verified", r.records),
                );
            } else {
                line(
                    o,
                    &format!("audit BROKEN at record {}: {}", r.broken_seq, r.detail),
                );
            }
        }
        Report::Impact(r) => impact_lines(o, r),
        Report::Validated { key, response } => {
            let key = String::from_utf8_lossy(key);
            if response.namespace.is_empty() {
                line(
                    o,
                    &format!("{key} is in no namespace: any value is accepted"),
                );
            } else if response.valid {
                line(
                    o,
                    &format!("valid: {key} in namespace {}", response.namespace),
                );
            } else {
                line(o, &format!("invalid: {}", response.reason));
            }
        }
    }
    out
}

/// One audit record: revision, time, author, door, key and the value it left.
fn audit_line(r: &AuditRecord) -> String {
    let at = chrono::DateTime::from_timestamp_millis(r.at_ms).map_or_else(
        || r.at_ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    let path = AuditPath::try_from(r.path).map_or("UNKNOWN", |p| p.as_str_name());
    let via = if r.change_id == 0 {
        path.to_string()
    } else {
        format!("{path} #{}", r.change_id)
    };
    let who = if r.principal.is_empty() {
        "(anonymous)"
    } else {
        r.principal.as_str()
    };
    let value = if r.redacted {
        "(redacted)".to_string()
    } else if r.deleted {
        "(deleted)".to_string()
    } else {
        String::from_utf8_lossy(&r.after).into_owned()
    };
    format!(
        "{} revision {} {at} {who} {via} {} = {value}",
        r.seq,
        r.revision,
        String::from_utf8_lossy(&r.key)
    )
}

/// One line: id, namespace, state and what the state depends on.
fn change_summary(c: &ChangeRequest) -> String {
    let state = ChangeState::try_from(c.state).unwrap_or(ChangeState::Open);
    let head = format!(
        "Change request {} in {}: {}",
        c.id,
        c.namespace,
        state.as_str_name()
    );
    let approvers: Vec<&str> = c.approvals.iter().map(|a| a.principal.as_str()).collect();
    match state {
        ChangeState::Open if approvers.is_empty() => format!("{head}, no approvals yet"),
        ChangeState::Open => format!("{head}, approved by {}", approvers.join(", ")),
        ChangeState::Approved => format!(
            "{head} by {}, applies at {}",
            approvers.join(", "),
            chrono::DateTime::from_timestamp_millis(c.apply_at_ms).map_or_else(
                || format!("{} ms", c.apply_at_ms),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        ),
        ChangeState::Applied => {
            let how = if c.break_glass {
                format!(
                    " by break-glass ({}: {}), needs review",
                    c.decided_by, c.reason
                )
            } else {
                format!(", approved by {}", approvers.join(", "))
            };
            format!("{head} at revision {}{how}", c.applied_revision)
        }
        ChangeState::Conflicted => {
            let keys: Vec<String> = c
                .conflicting_keys
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            format!(
                "{head}: {} changed since it was opened; nothing was applied, rebase it",
                keys.join(", ")
            )
        }
        ChangeState::Rejected | ChangeState::Cancelled => {
            let why = if c.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", c.reason)
            };
            format!("{head} by {}{why}", c.decided_by)
        }
    }
}

/// `cr get`: the description, author, operations and approvals.
fn change_detail(o: &mut Vec<u8>, c: &ChangeRequest) {
    line(o, &format!("Author: {}", c.author));
    line(o, &format!("Description: {}", c.description));
    for op in &c.ops {
        let key = String::from_utf8_lossy(&op.key);
        if op.delete {
            line(
                o,
                &format!("\tdelete {key} (base revision {})", op.base_mod_revision),
            );
        } else {
            line(
                o,
                &format!(
                    "\tput {key} = {} (base revision {})",
                    String::from_utf8_lossy(&op.value),
                    op.base_mod_revision
                ),
            );
        }
    }
    for approval in &c.approvals {
        line(
            o,
            &format!(
                "Approved by {} at {} ms",
                approval.principal, approval.at_ms
            ),
        );
    }
}

/// `ns get`: one `Field: value` line per part of the policy.
fn namespace_lines(o: &mut Vec<u8>, n: &Namespace) {
    line(o, &format!("Namespace: {}", n.name));
    line(
        o,
        &format!("Prefix: {}", String::from_utf8_lossy(&n.prefix)),
    );
    if n.schema.is_empty() {
        line(o, "Schema: none");
    } else {
        line(
            o,
            &format!(
                "Schema: version {}, {} bytes",
                n.schema_version,
                n.schema.len()
            ),
        );
    }
    let approval = n.approval.clone().unwrap_or_default();
    if approval.approvals_required == 0 {
        line(o, "Approvals: none (direct writes allowed)");
    } else {
        let approvers = if approval.approver_roles.is_empty() {
            "any user".to_string()
        } else {
            format!("roles {}", approval.approver_roles.join(", "))
        };
        line(
            o,
            &format!(
                "Approvals: {} from {approvers}; self-approval {}",
                approval.approvals_required,
                if approval.allow_self_approval {
                    "allowed"
                } else {
                    "forbidden"
                }
            ),
        );
    }
    if !approval.break_glass_role.is_empty() {
        line(
            o,
            &format!("Break-glass role: {}", approval.break_glass_role),
        );
    }
    let environments: Vec<String> = n
        .environments
        .iter()
        .map(|e| {
            if e.inherits.is_empty() {
                e.name.clone()
            } else {
                format!("{} (inherits {})", e.name, e.inherits)
            }
        })
        .collect();
    line(o, &format!("Environments: {}", environments.join(", ")));
    line(o, &format!("Owners: {}", n.owners.join(", ")));
    line(o, &format!("Description: {}", n.description));
    line(o, &format!("Sensitive: {}", n.sensitive));
    line(
        o,
        &format!(
            "Revisions: created {}, modified {}",
            n.create_revision, n.mod_revision
        ),
    );
}

/// `role get`: the keys and ranges a role may read, then those it may write, as
/// etcdctl prints them (`[a, b)`, `[a, <open ended>`, `(prefix a)`, a single key bare).
fn role_get(o: &mut Vec<u8>, name: &str, response: &AuthRoleGetResponse) {
    line(o, &format!("Role {name}"));
    let print = |o: &mut Vec<u8>, perm: &Permission| {
        o.push(b'\t');
        if perm.range_end.is_empty() {
            o.extend_from_slice(&perm.key);
            o.push(b'\n');
            return;
        }
        o.push(b'[');
        o.extend_from_slice(&perm.key);
        if perm.range_end == b"\0" {
            o.extend_from_slice(b", <open ended>");
        } else {
            o.extend_from_slice(b", ");
            o.extend_from_slice(&perm.range_end);
            o.push(b')');
        }
        if !perm.key.is_empty() && prefix_range_end(&perm.key) == perm.range_end {
            o.extend_from_slice(b" (prefix ");
            o.extend_from_slice(&perm.key);
            o.push(b')');
        }
        o.push(b'\n');
    };
    for (heading, wanted) in [("KV Read:", PermType::Read), ("KV Write:", PermType::Write)] {
        line(o, heading);
        for perm in &response.perm {
            let kind = PermType::try_from(perm.perm_type).unwrap_or(PermType::Read);
            if kind == wanted || kind == PermType::Readwrite {
                print(o, perm);
            }
        }
    }
}

fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

fn get(out: &mut Vec<u8>, response: &RangeResponse, hex: bool, value_only: bool) {
    for kv in &response.kvs {
        key_value(out, kv, hex, value_only);
    }
}

fn put(out: &mut Vec<u8>, response: &PutResponse, hex: bool) {
    line(out, "OK");
    if let Some(prev) = &response.prev_kv {
        key_value(out, prev, hex, false);
    }
}

fn delete(out: &mut Vec<u8>, response: &DeleteRangeResponse, hex: bool) {
    line(out, &response.deleted.to_string());
    for prev in &response.prev_kvs {
        key_value(out, prev, hex, false);
    }
}

/// The key line (unless `value_only`) and the value line, raw or `--hex` escaped.
fn key_value(out: &mut Vec<u8>, kv: &KeyValue, hex: bool, value_only: bool) {
    if hex {
        if !value_only {
            line(out, &go_text::hex_escaped(&kv.key));
        }
        line(out, &go_text::hex_escaped(&kv.value));
    } else {
        if !value_only {
            let _ = out.write_all(&kv.key);
            out.push(b'\n');
        }
        let _ = out.write_all(&kv.value);
        out.push(b'\n');
    }
}

/// `impact`: one line per key, a verdict, one line per watcher, the members that did not
/// answer.
fn impact_lines(o: &mut Vec<u8>, r: &vane_proto::api::ImpactResponse) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for k in &r.keys {
        let what = if k.delete { "delete" } else { "put" };
        let namespace = if k.namespace.is_empty() {
            "no namespace".to_string()
        } else {
            format!("namespace {}", k.namespace)
        };
        let verdict = if k.accepted {
            let unchanged = if k.changes_value { "" } else { " (same value)" };
            format!("accepted{unchanged}")
        } else {
            format!("REFUSED: {}", k.reason)
        };
        line(
            o,
            &format!(
                "{what} {} ({namespace}, mod revision {}): {verdict}",
                text(&k.key),
                k.mod_revision
            ),
        );
    }
    let refused = r.keys.iter().filter(|k| !k.accepted).count();
    let listed = if r.key_count > r.keys.len() as u64 {
        format!(" (first {} listed)", r.keys.len())
    } else {
        String::new()
    };
    let verdict = if r.accepted {
        "all accepted".to_string()
    } else {
        format!("{refused} listed refused")
    };
    line(
        o,
        &format!("keys: {} affected{listed}, {verdict}", r.key_count),
    );
    for w in &r.watchers {
        let range = match w.range_end.as_slice() {
            [] => text(&w.key),
            [0] => format!("{} and above", text(&w.key)),
            end if end == vane_client::txn::prefix_range_end(&w.key).as_slice() => {
                format!("prefix {}", text(&w.key))
            }
            end => format!("[{}, {})", text(&w.key), text(end)),
        };
        let user = if w.user.is_empty() {
            String::new()
        } else {
            format!(" as {}", w.user)
        };
        line(
            o,
            &format!(
                "watcher {} on {} ({:x}): {:?} at {}{user}, watching {range} ({} key(s))",
                w.watch_id, w.member_name, w.member_id, w.client, w.address, w.matched_keys
            ),
        );
    }
    line(
        o,
        &format!("watchers: {} would receive this change", r.watcher_count),
    );
    for u in &r.unanswered {
        line(
            o,
            &format!(
                "member {} ({:x}) did not answer, its watchers are not counted: {}",
                u.member_name, u.member_id, u.error
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{get_foo, header, kv};
    use super::*;
    use vane_proto::etcdserverpb::{
        LeaseGrantResponse, LeaseLeasesResponse, LeaseStatus, LeaseTimeToLiveResponse, Member,
        MemberAddResponse, MemberListResponse, ResponseOp, TxnResponse, WatchResponse,
    };
    use vane_proto::mvccpb::Event;

    fn text(report: Report<'_>, hex: bool) -> String {
        String::from_utf8(render(&report, hex)).unwrap()
    }

    #[test]
    fn get_prints_keys_and_values() {
        let response = get_foo();
        let report = Report::Get {
            response: &response,
            value_only: false,
        };
        assert_eq!(text(report, false), "foo\nbar\n");
        assert_eq!(text(report, true), "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\n");
        let values = Report::Get {
            response: &response,
            value_only: true,
        };
        assert_eq!(text(values, false), "bar\n");
    }

    #[test]
    fn put_and_delete_print_ok_and_counts() {
        let put = PutResponse {
            header: header(3),
            prev_kv: Some(kv("foo", "bar", 2, 2, 1)),
        };
        assert_eq!(text(Report::Put(&put), false), "OK\nfoo\nbar\n");
        let delete = DeleteRangeResponse {
            header: header(4),
            deleted: 1,
            prev_kvs: vec![kv("foo", "baz", 2, 3, 2)],
        };
        assert_eq!(text(Report::Delete(&delete), false), "1\nfoo\nbaz\n");
    }

    #[test]
    fn txn_separates_responses_with_blank_lines() {
        let txn = TxnResponse {
            header: header(21),
            succeeded: true,
            responses: vec![
                ResponseOp {
                    response: Some(Response::ResponsePut(PutResponse::default())),
                },
                ResponseOp {
                    response: Some(Response::ResponseRange(RangeResponse {
                        kvs: vec![kv("foo", "qux", 16, 21, 4)],
                        count: 1,
                        ..Default::default()
                    })),
                },
                ResponseOp {
                    response: Some(Response::ResponseDeleteRange(DeleteRangeResponse {
                        deleted: 1,
                        ..Default::default()
                    })),
                },
                ResponseOp {
                    response: Some(Response::ResponseRange(RangeResponse::default())),
                },
            ],
        };
        assert_eq!(
            text(Report::Txn(&txn), false),
            "SUCCESS\n\nOK\n\nfoo\nqux\n\n1\n\n"
        );
    }

    #[test]
    fn watch_prints_type_prev_and_current() {
        let response = WatchResponse {
            header: header(37),
            events: vec![
                Event {
                    r#type: EventType::Put as i32,
                    kv: Some(kv("dd", "1", 36, 36, 1)),
                    prev_kv: None,
                },
                Event {
                    r#type: EventType::Delete as i32,
                    kv: Some(KeyValue {
                        key: b"dd".to_vec(),
                        mod_revision: 37,
                        ..Default::default()
                    }),
                    prev_kv: Some(kv("dd", "1", 36, 36, 1)),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            text(Report::Watch(&response), false),
            "PUT\ndd\n1\nDELETE\ndd\n1\ndd\n\n"
        );
    }

    #[test]
    fn leases_print_hex_ids() {
        let grant = LeaseGrantResponse {
            header: header(31),
            id: 0x2040a201eacc0e3e,
            ttl: 100,
            error: String::new(),
        };
        assert_eq!(
            text(Report::LeaseGrant(&grant), false),
            "lease 2040a201eacc0e3e granted with TTL(100s)\n"
        );
        let ttl = LeaseTimeToLiveResponse {
            header: header(33),
            id: 0x2040a201eacc0e46,
            ttl: 99,
            granted_ttl: 100,
            keys: vec![b"lk".to_vec(), b"lk2".to_vec()],
        };
        let report = Report::LeaseTimeToLive {
            response: &ttl,
            keys: true,
        };
        assert_eq!(
            text(report, false),
            "lease 2040a201eacc0e46 granted with TTL(100s), remaining(99s), attached keys([lk lk2])\n"
        );
        let expired = LeaseTimeToLiveResponse {
            id: 0x1234,
            ttl: -1,
            ..Default::default()
        };
        let report = Report::LeaseTimeToLive {
            response: &expired,
            keys: false,
        };
        assert_eq!(
            text(report, false),
            "lease 0000000000001234 already expired\n"
        );
        let list = LeaseLeasesResponse {
            header: header(33),
            leases: vec![LeaseStatus {
                id: 0x2040a201eacc0e3e,
            }],
        };
        assert_eq!(
            text(Report::LeaseList(&list), false),
            "found 1 leases\n2040a201eacc0e3e\n"
        );
    }

    #[test]
    fn members_print_comma_separated_rows() {
        let list = MemberListResponse {
            header: header(0),
            members: vec![
                Member {
                    id: 0x2e1259d415f2a040,
                    name: "default".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                    client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                    is_learner: false,
                },
                Member {
                    id: 0xf9af10ed52107502,
                    name: String::new(),
                    peer_ur_ls: vec!["http://127.0.0.1:19558".into()],
                    client_ur_ls: vec![],
                    is_learner: true,
                },
            ],
        };
        assert_eq!(
            text(Report::MemberList(&list), false),
            "2e1259d415f2a040, started, default, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n\
             f9af10ed52107502, unstarted, , http://127.0.0.1:19558, , true\n"
        );
        let added = MemberAddResponse {
            header: Some(vane_proto::etcdserverpb::ResponseHeader {
                cluster_id: 0x48276a8f75b6a87,
                ..Default::default()
            }),
            member: Some(list.members[1].clone()),
            members: list.members.clone(),
        };
        let report = Report::MemberAdd {
            response: &added,
            name: "n2",
            initial_cluster: Some("default=http://127.0.0.1:23800,n2=http://127.0.0.1:19558"),
        };
        assert_eq!(
            text(report, false),
            "Member f9af10ed52107502 added to cluster  48276a8f75b6a87\n\n\
             VANED_NAME=\"n2\"\n\
             VANED_INITIAL_CLUSTER=\"default=http://127.0.0.1:23800,n2=http://127.0.0.1:19558\"\n\
             VANED_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:19558\"\n\
             VANED_INITIAL_CLUSTER_STATE=\"existing\"\n"
        );
    }
}
