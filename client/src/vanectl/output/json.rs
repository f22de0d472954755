//! `-w json`: what Go's `encoding/json` makes of the structs etcdctl 3.4 prints. That is
//! protobuf field names (`cluster_id`, `peerURLs`), zero values left out (`omitempty`),
//! uint64 ids as plain numbers, bytes in base64 and Go's string escaping (`<` as
//! `\u003c`); except where etcdctl prints its client library's own structs (lease
//! answers, watch responses, endpoint lists), whose field names and zero values follow
//! those structs. Fields are written in declaration order, so the output is
//! byte-for-byte etcdctl's.

use std::fmt::Write as _;

use base64::Engine as _;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{
    DeleteRangeResponse, Member, PutResponse, RangeResponse, ResponseHeader, ResponseOp,
    StatusResponse, TxnResponse,
};
use vane_proto::mvccpb::{Event, KeyValue};

use super::super::go_text;
use super::Report;

/// The JSON line etcdctl prints for `report`.
pub(super) fn render(report: &Report<'_>) -> String {
    let json = match *report {
        Report::Get { response, .. } => range(response),
        Report::Put(response) => put(response),
        Report::Delete(response) => delete(response),
        Report::Txn(response) => txn(response),
        Report::Watch(response) => {
            // clientv3.WatchResponse: exported Go fields, no omitempty.
            let mut o = Object::new();
            o.raw(
                "Header",
                &header(
                    response
                        .header
                        .as_ref()
                        .unwrap_or(&ResponseHeader::default()),
                ),
            );
            o.raw("Events", &array(response.events.iter().map(event)));
            o.int("CompactRevision", response.compact_revision.into());
            o.bool("Canceled", response.canceled);
            o.bool("Created", response.created);
            o.finish()
        }
        Report::Compaction { revision } => return format!("compacted revision {revision}\n"),
        Report::SnapshotSaved { path } => return format!("Snapshot saved at {path}\n"),
        Report::AuthToggled { enabled } => return super::auth_toggled(enabled),
        Report::AuthStatus(r) => {
            let mut o = Object::new();
            o.header(r.header.as_ref());
            o.bool_omitempty("enabled", r.enabled);
            o.int_omitempty("authRevision", r.auth_revision.into());
            o.finish()
        }
        Report::AuthChanged { header, .. } => {
            let mut o = Object::new();
            o.header(header);
            o.finish()
        }
        Report::UserGet { response: r, .. } => {
            let mut o = Object::new();
            o.header(r.header.as_ref());
            o.strings_omitempty("roles", &r.roles);
            o.finish()
        }
        Report::UserList(r) => {
            let mut o = Object::new();
            o.header(r.header.as_ref());
            o.strings_omitempty("users", &r.users);
            o.finish()
        }
        Report::RoleGet { response: r, .. } => {
            let mut o = Object::new();
            o.header(r.header.as_ref());
            if !r.perm.is_empty() {
                o.raw(
                    "perm",
                    &array(r.perm.iter().map(|p| {
                        let mut item = Object::new();
                        item.int_omitempty("permType", p.perm_type.into());
                        item.bytes_omitempty("key", &p.key);
                        item.bytes_omitempty("range_end", &p.range_end);
                        item.finish()
                    })),
                );
            }
            o.finish()
        }
        Report::RoleList(r) => {
            let mut o = Object::new();
            o.header(r.header.as_ref());
            o.strings_omitempty("roles", &r.roles);
            o.finish()
        }
        Report::Namespace { response: r, .. } => {
            let mut o = Object::new();
            if let Some(n) = &r.namespace {
                o.raw("namespace", &namespace(n));
            }
            o.int("revision", r.revision.into());
            if r.offending_count > 0 {
                o.raw(
                    "offending_keys",
                    &array(
                        r.offending_keys
                            .iter()
                            .map(|k| string(&String::from_utf8_lossy(k))),
                    ),
                );
                o.int("offending_count", r.offending_count.into());
            }
            o.finish()
        }
        Report::NamespaceList(r) => {
            let mut o = Object::new();
            o.raw("namespaces", &array(r.namespaces.iter().map(namespace)));
            o.int("revision", r.revision.into());
            o.finish()
        }
        Report::Change { response: r, .. } => {
            let mut o = Object::new();
            if let Some(c) = &r.change {
                o.raw("change", &change(c));
            }
            o.int("revision", r.revision.into());
            o.finish()
        }
        Report::ChangeList(r) => {
            let mut o = Object::new();
            o.raw("changes", &array(r.changes.iter().map(change)));
            o.int("revision", r.revision.into());
            o.finish()
        }
        Report::AuditList(r) => {
            let text = |bytes: &[u8]| string(&String::from_utf8_lossy(bytes));
            let mut o = Object::new();
            o.raw(
                "records",
                &array(r.records.iter().map(|a| {
                    let mut item = Object::new();
                    item.int("seq", a.seq.into());
                    item.string("namespace", &a.namespace);
                    item.raw("key", &text(&a.key));
                    item.int("revision", a.revision.into());
                    item.int("at_ms", a.at_ms.into());
                    item.string("principal", &a.principal);
                    item.string(
                        "path",
                        vane_proto::api::audit_record::Path::try_from(a.path)
                            .map_or("UNKNOWN", |p| p.as_str_name()),
                    );
                    item.int("change_id", a.change_id.into());
                    item.bool("existed_before", a.existed_before);
                    item.raw("before", &text(&a.before));
                    item.bool("deleted", a.deleted);
                    item.raw("after", &text(&a.after));
                    item.bool("redacted", a.redacted);
                    item.string(
                        "hash",
                        &a.hash
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>(),
                    );
                    item.finish()
                })),
            );
            o.int("revision", r.revision.into());
            o.finish()
        }
        Report::AuditVerified(r) => {
            let mut o = Object::new();
            o.bool("intact", r.intact);
            o.int("records", r.records.into());
            o.int_omitempty("broken_seq", r.broken_seq.into());
            o.string_omitempty("detail", &r.detail);
            o.finish()
        }
        Report::Impact(r) => {
            let text = |bytes: &[u8]| string(&String::from_utf8_lossy(bytes));
            let mut o = Object::new();
            o.raw(
                "keys",
                &array(r.keys.iter().map(|k| {
                    let mut item = Object::new();
                    item.raw("key", &text(&k.key));
                    item.bool("delete", k.delete);
                    item.string("namespace", &k.namespace);
                    item.int("mod_revision", k.mod_revision.into());
                    item.bool("accepted", k.accepted);
                    item.string_omitempty("reason", &k.reason);
                    item.bool("changes_value", k.changes_value);
                    item.finish()
                })),
            );
            o.int("key_count", r.key_count.into());
            o.bool("accepted", r.accepted);
            o.raw(
                "watchers",
                &array(r.watchers.iter().map(|w| {
                    let mut item = Object::new();
                    item.int("member_id", w.member_id.into());
                    item.string("member_name", &w.member_name);
                    item.string("client", &w.client);
                    item.string("address", &w.address);
                    item.string("user", &w.user);
                    item.int("watch_id", w.watch_id.into());
                    item.raw("key", &text(&w.key));
                    item.raw("range_end", &text(&w.range_end));
                    item.int("matched_keys", w.matched_keys.into());
                    item.finish()
                })),
            );
            o.int("watcher_count", r.watcher_count.into());
            o.raw(
                "unanswered",
                &array(r.unanswered.iter().map(|u| {
                    let mut item = Object::new();
                    item.int("member_id", u.member_id.into());
                    item.string("member_name", &u.member_name);
                    item.string("error", &u.error);
                    item.finish()
                })),
            );
            o.int("revision", r.revision.into());
            o.finish()
        }
        Report::Validated { key, response: r } => {
            let mut o = Object::new();
            o.string("key", &String::from_utf8_lossy(key));
            o.bool("valid", r.valid);
            o.string("namespace", &r.namespace);
            o.string_omitempty("reason", &r.reason);
            o.finish()
        }
        Report::LeaseGrant(r) => {
            let mut o = Object::new();
            o.embedded_header(r.header.as_ref());
            o.int("ID", r.id.into());
            o.int("TTL", r.ttl.into());
            o.string("Error", &r.error);
            o.finish()
        }
        Report::LeaseRevoke { response, .. } => {
            let mut o = Object::new();
            o.header(response.header.as_ref());
            o.finish()
        }
        Report::LeaseKeepAlive(r) => {
            let mut o = Object::new();
            o.embedded_header(r.header.as_ref());
            o.int("ID", r.id.into());
            o.int("TTL", r.ttl.into());
            o.finish()
        }
        Report::LeaseTimeToLive { response: r, .. } => {
            let mut o = Object::new();
            o.embedded_header(r.header.as_ref());
            o.int("id", r.id.into());
            o.int("ttl", r.ttl.into());
            o.int("granted-ttl", r.granted_ttl.into());
            if r.keys.is_empty() {
                o.raw("keys", "null");
            } else {
                o.raw("keys", &array(r.keys.iter().map(|k| bytes(k))));
            }
            o.finish()
        }
        Report::LeaseList(r) => {
            let mut o = Object::new();
            o.embedded_header(r.header.as_ref());
            o.raw(
                "leases",
                &array(r.leases.iter().map(|l| {
                    let mut item = Object::new();
                    item.int("id", l.id.into());
                    item.finish()
                })),
            );
            o.finish()
        }
        Report::MemberAdd { response, .. } => {
            let mut o = Object::new();
            o.header(response.header.as_ref());
            if let Some(m) = &response.member {
                o.raw("member", &member(m));
            }
            o.members(&response.members);
            o.finish()
        }
        Report::MemberRemove { response, .. } => {
            members_response(response.header.as_ref(), &response.members)
        }
        Report::MemberUpdate { response, .. } => {
            members_response(response.header.as_ref(), &response.members)
        }
        Report::MemberPromote { response, .. } => {
            members_response(response.header.as_ref(), &response.members)
        }
        Report::MemberList(response) => {
            members_response(response.header.as_ref(), &response.members)
        }
        Report::EndpointStatus(statuses) => array(statuses.iter().map(|s| {
            let mut o = Object::new();
            o.string("Endpoint", &s.endpoint);
            o.raw("Status", &status(&s.status));
            o.finish()
        })),
        Report::EndpointHealth(healths) => array(healths.iter().map(|h| {
            let mut o = Object::new();
            o.string("endpoint", &h.endpoint);
            o.bool("health", h.healthy);
            o.string("took", &go_text::format_duration(h.took));
            o.string_omitempty("error", &h.error);
            o.finish()
        })),
    };
    json + "\n"
}

/// A JSON object written field by field in the order given.
struct Object {
    text: String,
}

impl Object {
    fn new() -> Self {
        Object {
            text: String::from("{"),
        }
    }

    fn raw(&mut self, name: &str, json: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        self.text.push_str(&string(name));
        self.text.push(':');
        self.text.push_str(json);
    }

    fn int(&mut self, name: &str, value: i128) {
        self.raw(name, &value.to_string());
    }

    fn int_omitempty(&mut self, name: &str, value: i128) {
        if value != 0 {
            self.int(name, value);
        }
    }

    fn bool(&mut self, name: &str, value: bool) {
        self.raw(name, if value { "true" } else { "false" });
    }

    fn bool_omitempty(&mut self, name: &str, value: bool) {
        if value {
            self.bool(name, value);
        }
    }

    fn string(&mut self, name: &str, value: &str) {
        self.raw(name, &string(value));
    }

    fn string_omitempty(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.string(name, value);
        }
    }

    fn bytes_omitempty(&mut self, name: &str, value: &[u8]) {
        if !value.is_empty() {
            self.raw(name, &bytes(value));
        }
    }

    fn strings_omitempty(&mut self, name: &str, values: &[String]) {
        if !values.is_empty() {
            self.raw(name, &array(values.iter().map(|v| string(v))));
        }
    }

    /// A protobuf message's `header` field (a pointer: left out when absent).
    fn header(&mut self, value: Option<&ResponseHeader>) {
        if let Some(h) = value {
            self.raw("header", &header(h));
        }
    }

    /// A Go struct embedding `*pb.ResponseHeader`: its fields appear at the top level.
    fn embedded_header(&mut self, value: Option<&ResponseHeader>) {
        if let Some(h) = value {
            self.header_fields(h);
        }
    }

    fn header_fields(&mut self, h: &ResponseHeader) {
        self.int_omitempty("cluster_id", h.cluster_id.into());
        self.int_omitempty("member_id", h.member_id.into());
        self.int_omitempty("revision", h.revision.into());
        self.int_omitempty("raft_term", h.raft_term.into());
    }

    fn members(&mut self, members: &[Member]) {
        if !members.is_empty() {
            self.raw("members", &array(members.iter().map(member)));
        }
    }

    fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// A change request as Vane's own JSON: keys and values as text, the state by name.
fn change(c: &vane_proto::api::ChangeRequest) -> String {
    let text = |bytes: &[u8]| string(&String::from_utf8_lossy(bytes));
    let mut o = Object::new();
    o.int("id", c.id.into());
    o.string("namespace", &c.namespace);
    o.string("author", &c.author);
    o.string("description", &c.description);
    o.string(
        "state",
        vane_proto::api::change_request::State::try_from(c.state)
            .map_or("UNKNOWN", |s| s.as_str_name()),
    );
    o.raw(
        "ops",
        &array(c.ops.iter().map(|op| {
            let mut item = Object::new();
            item.raw("key", &text(&op.key));
            if op.delete {
                item.bool("delete", true);
            } else {
                item.raw("value", &text(&op.value));
            }
            item.int("base_mod_revision", op.base_mod_revision.into());
            item.finish()
        })),
    );
    o.raw(
        "approvals",
        &array(c.approvals.iter().map(|a| {
            let mut item = Object::new();
            item.string("principal", &a.principal);
            item.int("at_ms", a.at_ms.into());
            item.finish()
        })),
    );
    o.int("created_at_ms", c.created_at_ms.into());
    o.int("updated_at_ms", c.updated_at_ms.into());
    o.int("applied_revision", c.applied_revision.into());
    o.string("decided_by", &c.decided_by);
    o.string("reason", &c.reason);
    o.bool("break_glass", c.break_glass);
    o.bool("rollback", c.rollback);
    o.int("apply_at_ms", c.apply_at_ms.into());
    o.raw(
        "conflicting_keys",
        &array(c.conflicting_keys.iter().map(|k| text(k))),
    );
    o.finish()
}

/// A namespace as Vane's own JSON: readable prefix, the schema as JSON itself.
fn namespace(n: &vane_proto::api::Namespace) -> String {
    let mut o = Object::new();
    o.string("name", &n.name);
    o.string("prefix", &String::from_utf8_lossy(&n.prefix));
    if !n.schema.is_empty() {
        // The cluster accepted it as JSON; print it as such, re-encoded compactly.
        match serde_json::from_str::<serde_json::Value>(&n.schema) {
            Ok(schema) => o.raw("schema", &schema.to_string()),
            Err(_) => o.string("schema", &n.schema),
        }
    }
    o.int("schema_version", n.schema_version.into());
    let approval = n.approval.clone().unwrap_or_default();
    let mut a = Object::new();
    a.int("approvals_required", approval.approvals_required.into());
    a.raw(
        "approver_roles",
        &array(approval.approver_roles.iter().map(|r| string(r))),
    );
    a.bool("allow_self_approval", approval.allow_self_approval);
    a.string("break_glass_role", &approval.break_glass_role);
    o.raw("approval", &a.finish());
    o.bool("sensitive", n.sensitive);
    o.raw(
        "environments",
        &array(n.environments.iter().map(|e| {
            let mut env = Object::new();
            env.string("name", &e.name);
            env.string("inherits", &e.inherits);
            env.finish()
        })),
    );
    o.raw("owners", &array(n.owners.iter().map(|owner| string(owner))));
    o.string("description", &n.description);
    o.int("create_revision", n.create_revision.into());
    o.int("mod_revision", n.mod_revision.into());
    o.finish()
}

fn array(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    format!("[{}]", items.join(","))
}

/// Go's `encoding/json` string: `"`, `\` and control characters escaped, and `<`, `>`,
/// `&`, U+2028 and U+2029 as `\u` escapes (Go's HTML-safe default).
fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Go `[]byte` in JSON: standard base64 with padding, as a string.
fn bytes(value: &[u8]) -> String {
    string(&base64::engine::general_purpose::STANDARD.encode(value))
}

fn header(h: &ResponseHeader) -> String {
    let mut o = Object::new();
    o.header_fields(h);
    o.finish()
}

fn key_value(kv: &KeyValue) -> String {
    let mut o = Object::new();
    o.bytes_omitempty("key", &kv.key);
    o.int_omitempty("create_revision", kv.create_revision.into());
    o.int_omitempty("mod_revision", kv.mod_revision.into());
    o.int_omitempty("version", kv.version.into());
    o.bytes_omitempty("value", &kv.value);
    o.int_omitempty("lease", kv.lease.into());
    o.finish()
}

fn key_values(o: &mut Object, name: &str, kvs: &[KeyValue]) {
    if !kvs.is_empty() {
        o.raw(name, &array(kvs.iter().map(key_value)));
    }
}

fn range(r: &RangeResponse) -> String {
    let mut o = Object::new();
    o.header(r.header.as_ref());
    key_values(&mut o, "kvs", &r.kvs);
    o.bool_omitempty("more", r.more);
    o.int_omitempty("count", r.count.into());
    o.finish()
}

fn put(r: &PutResponse) -> String {
    let mut o = Object::new();
    o.header(r.header.as_ref());
    if let Some(prev) = &r.prev_kv {
        o.raw("prev_kv", &key_value(prev));
    }
    o.finish()
}

fn delete(r: &DeleteRangeResponse) -> String {
    let mut o = Object::new();
    o.header(r.header.as_ref());
    o.int_omitempty("deleted", r.deleted.into());
    key_values(&mut o, "prev_kvs", &r.prev_kvs);
    o.finish()
}

fn txn(r: &TxnResponse) -> String {
    let mut o = Object::new();
    o.header(r.header.as_ref());
    o.bool_omitempty("succeeded", r.succeeded);
    if !r.responses.is_empty() {
        o.raw("responses", &array(r.responses.iter().map(response_op)));
    }
    o.finish()
}

/// gogoproto's oneof in JSON: `{"Response":{"ResponsePut":{...}}}`.
fn response_op(op: &ResponseOp) -> String {
    let (name, json) = match &op.response {
        Some(Response::ResponseRange(r)) => ("ResponseRange", range(r)),
        Some(Response::ResponsePut(r)) => ("ResponsePut", put(r)),
        Some(Response::ResponseDeleteRange(r)) => ("ResponseDeleteRange", delete(r)),
        Some(Response::ResponseTxn(r)) => ("ResponseTxn", txn(r)),
        None => return "{}".to_string(),
    };
    let mut inner = Object::new();
    inner.raw(name, &json);
    let mut o = Object::new();
    o.raw("Response", &inner.finish());
    o.finish()
}

fn event(e: &Event) -> String {
    let mut o = Object::new();
    o.int_omitempty("type", e.r#type.into());
    if let Some(kv) = &e.kv {
        o.raw("kv", &key_value(kv));
    }
    if let Some(prev) = &e.prev_kv {
        o.raw("prev_kv", &key_value(prev));
    }
    o.finish()
}

fn member(m: &Member) -> String {
    let mut o = Object::new();
    o.int_omitempty("ID", m.id.into());
    o.string_omitempty("name", &m.name);
    o.strings_omitempty("peerURLs", &m.peer_ur_ls);
    o.strings_omitempty("clientURLs", &m.client_ur_ls);
    o.bool_omitempty("isLearner", m.is_learner);
    o.finish()
}

fn members_response(h: Option<&ResponseHeader>, members: &[Member]) -> String {
    let mut o = Object::new();
    o.header(h);
    o.members(members);
    o.finish()
}

fn status(s: &StatusResponse) -> String {
    let mut o = Object::new();
    o.header(s.header.as_ref());
    o.string_omitempty("version", &s.version);
    o.int_omitempty("dbSize", s.db_size.into());
    o.int_omitempty("leader", s.leader.into());
    o.int_omitempty("raftIndex", s.raft_index.into());
    o.int_omitempty("raftTerm", s.raft_term.into());
    o.int_omitempty("raftAppliedIndex", s.raft_applied_index.into());
    o.strings_omitempty("errors", &s.errors);
    o.int_omitempty("dbSizeInUse", s.db_size_in_use.into());
    o.bool_omitempty("isLearner", s.is_learner);
    o.finish()
}

#[cfg(test)]
mod tests {
    use super::super::samples::{get_foo, header as sample_header, kv};
    use super::super::{EndpointHealth, EndpointStatus};
    use super::*;
    use std::time::Duration;
    use vane_proto::etcdserverpb::{
        LeaseGrantResponse, LeaseLeasesResponse, LeaseStatus, LeaseTimeToLiveResponse,
        MemberListResponse, WatchResponse,
    };

    // The expected strings below are what etcdctl 3.4.23 printed against etcd 3.4.

    #[test]
    fn get_matches_etcdctl() {
        let response = get_foo();
        let report = Report::Get {
            response: &response,
            value_only: false,
        };
        assert_eq!(
            render(&report),
            "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":2,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\
             \"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"count\":1}\n"
        );
        let empty = RangeResponse {
            header: sample_header(12),
            ..Default::default()
        };
        let report = Report::Get {
            response: &empty,
            value_only: false,
        };
        assert_eq!(
            render(&report),
            "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":12,\"raft_term\":2}}\n"
        );
    }

    #[test]
    fn txn_wraps_oneofs_like_gogoproto() {
        let response = TxnResponse {
            header: sample_header(31),
            succeeded: false,
            responses: vec![
                ResponseOp {
                    response: Some(Response::ResponsePut(PutResponse {
                        header: Some(ResponseHeader {
                            revision: 31,
                            ..Default::default()
                        }),
                        prev_kv: None,
                    })),
                },
                ResponseOp {
                    response: Some(Response::ResponseRange(RangeResponse {
                        header: Some(ResponseHeader {
                            revision: 31,
                            ..Default::default()
                        }),
                        kvs: vec![kv("foo", "nope", 16, 31, 11)],
                        more: false,
                        count: 1,
                    })),
                },
            ],
        };
        assert_eq!(
            render(&Report::Txn(&response)),
            "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":31,\"raft_term\":2},\"responses\":[{\"Response\":{\"ResponsePut\":\
             {\"header\":{\"revision\":31}}}},{\"Response\":{\"ResponseRange\":{\"header\":\
             {\"revision\":31},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":16,\
             \"mod_revision\":31,\"version\":11,\"value\":\"bm9wZQ==\"}],\"count\":1}}}]}\n"
        );
    }

    #[test]
    fn watch_uses_the_client_struct() {
        let response = WatchResponse {
            header: sample_header(37),
            events: vec![Event {
                r#type: 1,
                kv: Some(KeyValue {
                    key: b"dd".to_vec(),
                    mod_revision: 37,
                    ..Default::default()
                }),
                prev_kv: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            render(&Report::Watch(&response)),
            "{\"Header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":37,\"raft_term\":2},\"Events\":[{\"type\":1,\"kv\":{\"key\":\"ZGQ=\",\
             \"mod_revision\":37}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n"
        );
    }

    #[test]
    fn lease_answers_flatten_the_header() {
        let grant = LeaseGrantResponse {
            header: sample_header(31),
            id: 2324035536841084480,
            ttl: 100,
            error: String::new(),
        };
        assert_eq!(
            render(&Report::LeaseGrant(&grant)),
            "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":31,\"raft_term\":2,\"ID\":2324035536841084480,\"TTL\":100,\"Error\":\"\"}\n"
        );
        let ttl = LeaseTimeToLiveResponse {
            header: sample_header(33),
            id: 4660,
            ttl: -1,
            granted_ttl: 0,
            keys: vec![],
        };
        let report = Report::LeaseTimeToLive {
            response: &ttl,
            keys: false,
        };
        assert_eq!(
            render(&report),
            "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":33,\"raft_term\":2,\"id\":4660,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}\n"
        );
        let list = LeaseLeasesResponse {
            header: sample_header(33),
            leases: vec![LeaseStatus { id: 7 }, LeaseStatus { id: 8 }],
        };
        assert_eq!(
            render(&Report::LeaseList(&list)),
            "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"revision\":33,\"raft_term\":2,\"leases\":[{\"id\":7},{\"id\":8}]}\n"
        );
    }

    #[test]
    fn members_and_endpoints_match_etcdctl() {
        let list = MemberListResponse {
            header: Some(ResponseHeader {
                cluster_id: 324952591200643719,
                member_id: 3319814642761637952,
                revision: 0,
                raft_term: 2,
            }),
            members: vec![Member {
                id: 3319814642761637952,
                name: "default".into(),
                peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                is_learner: false,
            }],
        };
        assert_eq!(
            render(&Report::MemberList(&list)),
            "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\
             \"raft_term\":2},\"members\":[{\"ID\":3319814642761637952,\"name\":\"default\",\
             \"peerURLs\":[\"http://127.0.0.1:23800\"],\"clientURLs\":[\"http://127.0.0.1:23790\"]}]}\n"
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
                errors: vec![],
                db_size_in_use: 20480,
                is_learner: false,
            },
        }];
        assert_eq!(
            render(&Report::EndpointStatus(&statuses)),
            "[{\"Endpoint\":\"127.0.0.1:23790\",\"Status\":{\"header\":{\"cluster_id\":\
             324952591200643719,\"member_id\":3319814642761637952,\"revision\":33,\"raft_term\":2},\
             \"version\":\"3.4.23\",\"dbSize\":24576,\"leader\":3319814642761637952,\
             \"raftIndex\":74,\"raftTerm\":2,\"raftAppliedIndex\":74,\"dbSizeInUse\":20480}}]\n"
        );
        let healths = [
            EndpointHealth {
                endpoint: "127.0.0.1:23790".into(),
                healthy: true,
                took: Duration::from_nanos(5_536_601),
                error: String::new(),
            },
            EndpointHealth {
                endpoint: "127.0.0.1:1".into(),
                healthy: false,
                took: Duration::from_nanos(5_001_021_787),
                error: "context deadline exceeded".into(),
            },
        ];
        assert_eq!(
            render(&Report::EndpointHealth(&healths)),
            "[{\"endpoint\":\"127.0.0.1:23790\",\"health\":true,\"took\":\"5.536601ms\"},\
             {\"endpoint\":\"127.0.0.1:1\",\"health\":false,\"took\":\"5.001021787s\",\
             \"error\":\"context deadline exceeded\"}]\n"
        );
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            string("a<b>&\"\\\n\u{1}"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001""#
        );
        assert_eq!(bytes(b"foo2"), "\"Zm9vMg==\"");
    }
}
