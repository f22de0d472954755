//! Requests that change keys: Put, DeleteRange and Txn, with etcd's checks.
//!
//! A txn runs in three steps, as etcd's apply does. First every compare of every nested
//! level is evaluated against the state *before* the txn, which fixes the path (which
//! branch each level takes). Then the requests on that path are checked (leases exist,
//! `ignore_value`/`ignore_lease` keys exist, read revisions are retained), so a refused
//! txn changes nothing. Only then are the operations executed in order, each seeing the
//! writes of the ones before it, all at one revision. A txn that only reads takes the
//! same three steps against a point-in-time view instead of the write batch.

use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use vane_proto::mvccpb::KeyValue;

use super::range::{Revisions, get_current, range, visit_live};
use super::write::WriteTxn;
use super::{KeyRange, Limits};
use crate::db::Reader;
use crate::error::{Result, StoreError};
use crate::lease;

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// etcd's argument rules for a Range, checked before anything is read.
pub fn check_range_request(request: &RangeRequest) -> Result<()> {
    if request.key.is_empty() {
        return Err(StoreError::InvalidArgument(
            "etcdserver: key is not provided".into(),
        ));
    }
    if request.sort_order < 0 || request.sort_order > 2 {
        return Err(StoreError::InvalidArgument(
            "etcdserver: invalid sort option".into(),
        ));
    }
    if request.sort_target < 0 || request.sort_target > 4 {
        return Err(StoreError::InvalidArgument(
            "etcdserver: invalid sort option".into(),
        ));
    }
    Ok(())
}

/// etcd's argument rules for a Put.
pub fn check_put_request(request: &PutRequest) -> Result<()> {
    if request.key.is_empty() {
        return Err(StoreError::InvalidArgument(
            "etcdserver: key is not provided".into(),
        ));
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(StoreError::InvalidArgument(
            "etcdserver: value is provided".into(),
        ));
    }
    if request.ignore_lease && request.lease != 0 {
        return Err(StoreError::InvalidArgument(
            "etcdserver: lease is provided".into(),
        ));
    }
    Ok(())
}

/// etcd's argument rules for a DeleteRange.
pub fn check_delete_request(request: &DeleteRangeRequest) -> Result<()> {
    if request.key.is_empty() {
        return Err(StoreError::InvalidArgument(
            "etcdserver: key is not provided".into(),
        ));
    }
    Ok(())
}

/// etcd's argument rules for a Txn: operation counts, each operation's own rules, and
/// the rule that one branch may not write a key twice.
pub fn check_txn_request(request: &TxnRequest, limits: Limits) -> Result<()> {
    if request.compare.len() > limits.txn_ops_max
        || request.success.len() > limits.txn_ops_max
        || request.failure.len() > limits.txn_ops_max
    {
        return Err(StoreError::TooManyOps);
    }
    for op in request.success.iter().chain(&request.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range_request(r)?,
            Some(Request::RequestPut(r)) => check_put_request(r)?,
            Some(Request::RequestDeleteRange(r)) => check_delete_request(r)?,
            Some(Request::RequestTxn(r)) => check_txn_request(r, limits)?,
            None => {
                return Err(StoreError::InvalidArgument(
                    "etcdserver: request op is empty".into(),
                ));
            }
        }
    }
    check_intervals(&request.success)?;
    check_intervals(&request.failure)?;
    Ok(())
}

/// Whether any branch of `request`, at any depth, puts a key: such a txn may grow the
/// store, so it is refused while the store is out of space.
pub fn puts_anything(request: &TxnRequest) -> bool {
    request
        .success
        .iter()
        .chain(&request.failure)
        .any(|op| match &op.request {
            Some(Request::RequestPut(_)) => true,
            Some(Request::RequestTxn(nested)) => puts_anything(nested),
            _ => false,
        })
}

/// A delete's interval for the duplicate-key rule: etcd compares `range_end` literally,
/// empty meaning a single key.
#[derive(Clone, Debug)]
struct DeleteInterval {
    from: Vec<u8>,
    to: Option<Vec<u8>>,
}

impl DeleteInterval {
    fn contains(&self, key: &[u8]) -> bool {
        match &self.to {
            None => key == self.from.as_slice(),
            Some(to) => key >= self.from.as_slice() && key < to.as_slice(),
        }
    }
}

/// The keys one list of operations puts and the intervals it deletes, refusing a key put
/// twice or put inside a deleted interval. Branches of a nested txn are exclusive, so a
/// key may be put in both.
fn check_intervals(ops: &[RequestOp]) -> Result<(Vec<Vec<u8>>, Vec<DeleteInterval>)> {
    let mut deletes: Vec<DeleteInterval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(DeleteInterval {
                from: d.key.clone(),
                to: (!d.range_end.is_empty()).then(|| d.range_end.clone()),
            }),
            _ => None,
        })
        .collect();
    let deleted = |deletes: &[DeleteInterval], key: &[u8]| deletes.iter().any(|d| d.contains(key));

    let mut puts: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        let Some(Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let (puts_then, deletes_then) = check_intervals(&nested.success)?;
        let (puts_else, deletes_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&deletes, key) {
                return Err(StoreError::DuplicateKey);
            }
            puts.push(key.clone());
        }
        for key in &puts_else {
            if (puts.contains(key) && !puts_then.contains(key)) || deleted(&deletes, key) {
                return Err(StoreError::DuplicateKey);
            }
            if !puts.contains(key) {
                puts.push(key.clone());
            }
        }
        deletes.extend(deletes_then);
        deletes.extend(deletes_else);
    }
    for op in ops {
        let Some(Request::RequestPut(put)) = &op.request else {
            continue;
        };
        if puts.contains(&put.key) || deleted(&deletes, &put.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.push(put.key.clone());
    }
    Ok((puts, deletes))
}

/// Evaluates one compare at the current revision of `reader`. A compare over keys that do
/// not exist compares a zero key-value, except by value, which always fails (etcd: a
/// missing value cannot be told from an empty one).
pub(crate) fn compare_holds(
    reader: &dyn Reader,
    revisions: Revisions,
    compare: &Compare,
) -> Result<bool> {
    let keys = KeyRange::new(&compare.key, &compare.range_end);
    let target = CompareTarget::try_from(compare.target).unwrap_or(CompareTarget::Version);
    let mut all_hold = true;
    let mut any = false;
    visit_live(
        reader,
        &keys,
        revisions.current,
        revisions.current,
        &mut |kv| {
            any = true;
            all_hold = compare_kv(compare, target, &kv);
            Ok(all_hold)
        },
    )?;
    if !any {
        if target == CompareTarget::Value {
            return Ok(false);
        }
        return Ok(compare_kv(compare, target, &KeyValue::default()));
    }
    Ok(all_hold)
}

fn compare_kv(compare: &Compare, target: CompareTarget, kv: &KeyValue) -> bool {
    let ordering = match target {
        CompareTarget::Value => {
            let wanted: &[u8] = match &compare.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(wanted)
        }
        CompareTarget::Create => kv.create_revision.cmp(&int_target(compare, |t| match t {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Mod => kv.mod_revision.cmp(&int_target(compare, |t| match t {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Version => kv.version.cmp(&int_target(compare, |t| match t {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Lease => kv.lease.cmp(&int_target(compare, |t| match t {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
    };
    match CompareResult::try_from(compare.result).unwrap_or(CompareResult::Equal) {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

fn int_target(compare: &Compare, pick: impl Fn(&TargetUnion) -> Option<i64>) -> i64 {
    compare.target_union.as_ref().and_then(pick).unwrap_or(0)
}

/// Which branch every txn level takes, in pre-order, decided on the pre-txn state.
fn txn_path(
    reader: &dyn Reader,
    revisions: Revisions,
    request: &TxnRequest,
    path: &mut Vec<bool>,
) -> Result<()> {
    let mut succeeded = true;
    for compare in &request.compare {
        if !compare_holds(reader, revisions, compare)? {
            succeeded = false;
            break;
        }
    }
    path.push(succeeded);
    let ops = if succeeded {
        &request.success
    } else {
        &request.failure
    };
    for op in ops {
        if let Some(Request::RequestTxn(nested)) = &op.request {
            txn_path(reader, revisions, nested, path)?;
        }
    }
    Ok(())
}

/// Checks a put against the state before it runs: its lease exists, and a key it keeps
/// the value or lease of exists.
fn check_put_state(reader: &dyn Reader, put: &PutRequest) -> Result<()> {
    if (put.ignore_value || put.ignore_lease) && get_current(reader, &put.key)?.is_none() {
        return Err(StoreError::KeyNotFound);
    }
    if put.lease != 0 && !lease::exists(reader, put.lease)? {
        return Err(StoreError::LeaseNotFound);
    }
    Ok(())
}

fn check_path_state(
    reader: &dyn Reader,
    revisions: Revisions,
    request: &TxnRequest,
    path: &[bool],
    at: &mut usize,
) -> Result<()> {
    let succeeded = path.get(*at).copied().unwrap_or(false);
    *at += 1;
    let ops = if succeeded {
        &request.success
    } else {
        &request.failure
    };
    for op in ops {
        match &op.request {
            Some(Request::RequestPut(put)) => check_put_state(reader, put)?,
            Some(Request::RequestRange(r)) => {
                revisions.resolve(r.revision)?;
            }
            Some(Request::RequestTxn(nested)) => {
                check_path_state(reader, revisions, nested, path, at)?
            }
            Some(Request::RequestDeleteRange(_)) | None => {}
        }
    }
    Ok(())
}

/// Applies a Put. The caller has checked its arguments with [`check_put_request`].
pub(crate) fn put(txn: &mut WriteTxn<'_, '_>, request: &PutRequest) -> Result<PutResponse> {
    check_put_state(txn.reader(), request)?;
    execute_put(txn, request)
}

fn execute_put(txn: &mut WriteTxn<'_, '_>, request: &PutRequest) -> Result<PutResponse> {
    let previous = get_current(txn.reader(), &request.key)?;
    let value = match (&previous, request.ignore_value) {
        (Some(p), true) => p.value.clone(),
        (None, true) => return Err(StoreError::KeyNotFound),
        (_, false) => request.value.clone(),
    };
    let lease = match (&previous, request.ignore_lease) {
        (Some(p), true) => p.lease,
        (None, true) => return Err(StoreError::KeyNotFound),
        (_, false) => request.lease,
    };
    let prev_kv = if request.prev_kv {
        previous.clone()
    } else {
        None
    };
    txn.put_over(&request.key, value, lease, previous)?;
    Ok(PutResponse {
        header: header(txn.revisions().current),
        prev_kv,
    })
}

/// Applies a DeleteRange.
pub(crate) fn delete_range(
    txn: &mut WriteTxn<'_, '_>,
    request: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse> {
    let deleted = txn.delete_range(&KeyRange::new(&request.key, &request.range_end))?;
    Ok(DeleteRangeResponse {
        header: header(txn.revisions().current),
        deleted: deleted.len() as i64,
        prev_kvs: if request.prev_kv { deleted } else { Vec::new() },
    })
}

/// Applies a Txn. The caller has checked it with [`check_txn_request`].
pub(crate) fn txn(txn: &mut WriteTxn<'_, '_>, request: &TxnRequest) -> Result<TxnResponse> {
    let before = txn.revisions();
    let mut path = Vec::new();
    txn_path(txn.reader(), before, request, &mut path)?;
    check_path_state(txn.reader(), before, request, &path, &mut 0)?;
    let mut at = 0;
    execute_txn(txn, request, &path, &mut at)
}

/// Whether `request` only reads: every operation of both branches, at every depth, is a
/// Range or a txn that only reads. Whichever way its compares go it changes nothing, so a
/// member answers it as a read from its own state rather than through the log (etcd does
/// so for txns without nested ones; a nested txn that only reads is no different).
pub fn reads_only(request: &TxnRequest) -> bool {
    request
        .success
        .iter()
        .chain(&request.failure)
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) | None => true,
            Some(Request::RequestTxn(nested)) => reads_only(nested),
            Some(Request::RequestPut(_) | Request::RequestDeleteRange(_)) => false,
        })
}

/// Whether a txn that only reads may be answered from a member's state as it is, without
/// first confirming with the leader that it is current: it reads at least one range, and
/// every range at every depth asks to be serializable. etcd also answers a txn with no
/// range at all from local state; here a txn of compares alone is linearizable, since its
/// only answer is whether the compares hold now.
pub fn reads_serializable(request: &TxnRequest) -> bool {
    fn visit(request: &TxnRequest, ranges: &mut usize) -> bool {
        request
            .success
            .iter()
            .chain(&request.failure)
            .all(|op| match &op.request {
                Some(Request::RequestRange(range)) => {
                    *ranges += 1;
                    range.serializable
                }
                Some(Request::RequestTxn(nested)) => visit(nested, ranges),
                _ => true,
            })
    }
    let mut ranges = 0;
    visit(request, &mut ranges) && ranges > 0
}

/// Answers a txn that [`reads_only`] from `reader` at `revisions`, as applying it there
/// would: the same branches, ranges and errors, and no change. The caller has checked it
/// with [`check_txn_request`].
pub(crate) fn read_txn(
    reader: &dyn Reader,
    revisions: Revisions,
    request: &TxnRequest,
) -> Result<TxnResponse> {
    if !reads_only(request) {
        return Err(StoreError::InvalidArgument(
            "vane: a txn that writes cannot be answered as a read".into(),
        ));
    }
    let mut path = Vec::new();
    txn_path(reader, revisions, request, &mut path)?;
    check_path_state(reader, revisions, request, &path, &mut 0)?;
    let mut at = 0;
    execute_txn(&mut ReadOnly { reader, revisions }, request, &path, &mut at)
}

/// What a txn's operations run against: the request's writes when it is applied, a
/// point-in-time view when it only reads.
trait TxnTarget {
    fn reader(&self) -> &dyn Reader;
    fn revisions(&self) -> Revisions;
    fn put(&mut self, request: &PutRequest) -> Result<PutResponse>;
    fn delete_range(&mut self, request: &DeleteRangeRequest) -> Result<DeleteRangeResponse>;
}

impl TxnTarget for WriteTxn<'_, '_> {
    fn reader(&self) -> &dyn Reader {
        WriteTxn::reader(self)
    }

    fn revisions(&self) -> Revisions {
        WriteTxn::revisions(self)
    }

    fn put(&mut self, request: &PutRequest) -> Result<PutResponse> {
        execute_put(self, request)
    }

    fn delete_range(&mut self, request: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        delete_range(self, request)
    }
}

/// A view that only reads; [`read_txn`] checked that nothing on the txn writes.
struct ReadOnly<'r> {
    reader: &'r dyn Reader,
    revisions: Revisions,
}

impl ReadOnly<'_> {
    fn refuse<T>(&self) -> Result<T> {
        Err(StoreError::InvalidArgument(
            "vane: a txn answered as a read cannot write".into(),
        ))
    }
}

impl TxnTarget for ReadOnly<'_> {
    fn reader(&self) -> &dyn Reader {
        self.reader
    }

    fn revisions(&self) -> Revisions {
        self.revisions
    }

    fn put(&mut self, _: &PutRequest) -> Result<PutResponse> {
        self.refuse()
    }

    fn delete_range(&mut self, _: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        self.refuse()
    }
}

fn execute_txn(
    txn: &mut impl TxnTarget,
    request: &TxnRequest,
    path: &[bool],
    at: &mut usize,
) -> Result<TxnResponse> {
    let succeeded = path.get(*at).copied().unwrap_or(false);
    *at += 1;
    let ops = if succeeded {
        &request.success
    } else {
        &request.failure
    };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(Request::RequestRange(r)) => {
                Response::ResponseRange(range(txn.reader(), r, txn.revisions())?)
            }
            Some(Request::RequestPut(r)) => Response::ResponsePut(txn.put(r)?),
            Some(Request::RequestDeleteRange(r)) => {
                Response::ResponseDeleteRange(txn.delete_range(r)?)
            }
            Some(Request::RequestTxn(r)) => Response::ResponseTxn(execute_txn(txn, r, path, at)?),
            None => continue,
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: header(txn.revisions().current),
        succeeded,
        responses,
    })
}
