//! Building etcd transactions without spelling out protobuf oneofs: [`TxnBuilder`] for the
//! whole request, and small constructors for compares ([`compare_value`],
//! [`compare_mod_revision`], ...) and operations ([`put`], [`get`], [`delete`]).
//!
//! ```
//! use vane_client::txn::{self, CompareOp};
//! let request = vane_client::TxnBuilder::new()
//!     .when(txn::compare_value("/app/mode", CompareOp::Equal, "blue"))
//!     .and_then(txn::put("/app/mode", "green"))
//!     .or_else(txn::get("/app/mode"))
//!     .build();
//! assert_eq!(request.compare.len(), 1);
//! ```

use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

/// How a compare relates the key's attribute to the given value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
}

impl CompareOp {
    fn result(self) -> CompareResult {
        match self {
            CompareOp::Equal => CompareResult::Equal,
            CompareOp::NotEqual => CompareResult::NotEqual,
            CompareOp::Greater => CompareResult::Greater,
            CompareOp::Less => CompareResult::Less,
        }
    }
}

fn compare(
    key: impl Into<Vec<u8>>,
    op: CompareOp,
    target: CompareTarget,
    value: TargetUnion,
) -> Compare {
    Compare {
        result: op.result() as i32,
        target: target as i32,
        key: key.into(),
        target_union: Some(value),
        range_end: Vec::new(),
    }
}

/// Compares the key's value. A missing key never compares equal by value (etcd's rule).
pub fn compare_value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Compare {
    compare(
        key,
        op,
        CompareTarget::Value,
        TargetUnion::Value(value.into()),
    )
}

/// Compares the key's version (number of puts since creation; 0 when missing).
pub fn compare_version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Compare {
    compare(
        key,
        op,
        CompareTarget::Version,
        TargetUnion::Version(version),
    )
}

/// Compares the revision of the key's last modification (0 when missing): the basis of
/// compare-and-swap.
pub fn compare_mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Compare {
    compare(
        key,
        op,
        CompareTarget::Mod,
        TargetUnion::ModRevision(revision),
    )
}

/// Compares the revision the key was created at (0 when missing): `= 0` means "absent".
pub fn compare_create_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Compare {
    compare(
        key,
        op,
        CompareTarget::Create,
        TargetUnion::CreateRevision(revision),
    )
}

/// Compares the lease the key is attached to (0 when none or missing).
pub fn compare_lease(key: impl Into<Vec<u8>>, op: CompareOp, lease: i64) -> Compare {
    compare(key, op, CompareTarget::Lease, TargetUnion::Lease(lease))
}

/// A put inside a transaction.
pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })),
    }
}

/// A read of one key inside a transaction.
pub fn get(key: impl Into<Vec<u8>>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

/// A delete of one key inside a transaction.
pub fn delete(key: impl Into<Vec<u8>>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

/// Any other operation inside a transaction (a range with options, a nested txn).
pub fn op(request: Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

/// The `range_end` that makes a range, delete or watch cover every key starting with
/// `prefix` (etcd's `--prefix`): the prefix with its last byte below 0xff incremented,
/// or `\0` (every key) when there is none.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Collects a transaction's compares and its operations on success and on failure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnBuilder {
    request: TxnRequest,
}

impl TxnBuilder {
    /// An empty transaction (no compares: its success branch runs).
    pub fn new() -> Self {
        TxnBuilder::default()
    }

    /// Adds a compare; the transaction succeeds when every compare holds.
    pub fn when(mut self, compare: Compare) -> Self {
        self.request.compare.push(compare);
        self
    }

    /// Adds an operation to run when every compare holds.
    pub fn and_then(mut self, op: RequestOp) -> Self {
        self.request.success.push(op);
        self
    }

    /// Adds an operation to run when some compare fails.
    pub fn or_else(mut self, op: RequestOp) -> Self {
        self.request.failure.push(op);
        self
    }

    /// The request, for [`crate::Client::txn`].
    pub fn build(self) -> TxnRequest {
        self.request
    }
}

impl From<TxnBuilder> for TxnRequest {
    fn from(builder: TxnBuilder) -> Self {
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_assembles_compares_and_both_branches() {
        let request = TxnBuilder::new()
            .when(compare_mod_revision("k", CompareOp::Equal, 7))
            .when(compare_value("v", CompareOp::NotEqual, "x"))
            .and_then(put("k", "new"))
            .and_then(delete("old"))
            .or_else(get("k"))
            .build();
        assert_eq!(request.compare.len(), 2);
        let first = &request.compare[0];
        assert_eq!(first.key, b"k");
        assert_eq!(first.target, CompareTarget::Mod as i32);
        assert_eq!(first.result, CompareResult::Equal as i32);
        assert_eq!(first.target_union, Some(TargetUnion::ModRevision(7)));
        assert_eq!(request.compare[1].result, CompareResult::NotEqual as i32);
        assert_eq!(
            request.compare[1].target_union,
            Some(TargetUnion::Value(b"x".to_vec()))
        );
        assert!(matches!(
            &request.success[0].request,
            Some(Request::RequestPut(p)) if p.key == b"k" && p.value == b"new"
        ));
        assert!(matches!(
            &request.success[1].request,
            Some(Request::RequestDeleteRange(d)) if d.key == b"old" && d.range_end.is_empty()
        ));
        assert!(matches!(
            &request.failure[0].request,
            Some(Request::RequestRange(r)) if r.key == b"k"
        ));
    }

    #[test]
    fn every_compare_target_is_encoded() {
        let cases = [
            (
                compare_version("k", CompareOp::Greater, 2),
                CompareTarget::Version,
                TargetUnion::Version(2),
            ),
            (
                compare_create_revision("k", CompareOp::Equal, 0),
                CompareTarget::Create,
                TargetUnion::CreateRevision(0),
            ),
            (
                compare_lease("k", CompareOp::Less, 9),
                CompareTarget::Lease,
                TargetUnion::Lease(9),
            ),
        ];
        for (compare, target, value) in cases {
            assert_eq!(compare.target, target as i32);
            assert_eq!(compare.target_union, Some(value));
        }
    }

    #[test]
    fn prefix_ends_follow_etcd() {
        assert_eq!(prefix_range_end(b"a/"), b"a0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }
}
