//! From parsed flags to etcd requests, with etcdctl's rules for `--prefix`, `--from-key`,
//! sorting and argument checks. Shared by the verbs and by the operations of a txn
//! script, which take the same flags.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;

use vane_client::txn::prefix_range_end;
use vane_proto::etcdserverpb::range_request::{
    SortOrder as PbSortOrder, SortTarget as PbSortTarget,
};
use vane_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};

use super::cli::{Consistency, DelArgs, GetArgs, PutArgs, SortOrder, SortTarget};
use super::exit::CliError;

/// A command-line key or value as bytes (arguments need not be UTF-8 on Unix).
pub fn bytes_of(arg: &OsStr) -> Vec<u8> {
    arg.as_bytes().to_vec()
}

/// `[key, range_end)` after `--prefix` / `--from-key`, as etcd's Go client computes it.
fn key_range(
    key: &OsStr,
    range_end: Option<&OsStr>,
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), CliError> {
    if prefix && from_key {
        return Err(CliError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if (prefix || from_key) && range_end.is_some() {
        return Err(CliError::bad_args(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
        ));
    }
    let key = bytes_of(key);
    if prefix {
        if key.is_empty() {
            return Ok((vec![0], vec![0]));
        }
        let end = prefix_range_end(&key);
        return Ok((key, end));
    }
    if from_key {
        let key = if key.is_empty() { vec![0] } else { key };
        return Ok((key, vec![0]));
    }
    Ok((key, range_end.map(bytes_of).unwrap_or_default()))
}

/// The Range request of `get`.
pub fn range_request(args: &GetArgs) -> Result<RangeRequest, CliError> {
    let (key, range_end) = key_range(
        &args.key,
        args.range_end.as_deref(),
        args.prefix,
        args.from_key,
    )?;
    let sort_target = match args.sort_by.unwrap_or(SortTarget::Key) {
        SortTarget::Key => PbSortTarget::Key,
        SortTarget::Create => PbSortTarget::Create,
        SortTarget::Modify => PbSortTarget::Mod,
        SortTarget::Value => PbSortTarget::Value,
        SortTarget::Version => PbSortTarget::Version,
    };
    let mut sort_order = match args.order {
        None => PbSortOrder::None,
        Some(SortOrder::Ascend) => PbSortOrder::Ascend,
        Some(SortOrder::Descend) => PbSortOrder::Descend,
    };
    // etcd returns keys in ascending order anyway; asking for it explicitly would make
    // the server sort the whole range before applying the limit (etcd's client rule).
    if sort_target == PbSortTarget::Key && sort_order == PbSortOrder::Ascend {
        sort_order = PbSortOrder::None;
    }
    Ok(RangeRequest {
        key,
        range_end,
        limit: args.limit,
        revision: args.rev,
        sort_order: sort_order as i32,
        sort_target: sort_target as i32,
        serializable: args.consistency == Consistency::Serializable,
        keys_only: args.keys_only,
        count_only: args.count_only,
        ..Default::default()
    })
}

/// The Put request of `put`, given the value (from the arguments or stdin).
pub fn put_request(args: &PutArgs, value: Vec<u8>) -> Result<PutRequest, CliError> {
    if args.ignore_value && args.value.is_some() {
        return Err(CliError::bad_args("value is given in --ignore-value mode"));
    }
    if args.ignore_lease && args.lease != 0 {
        return Err(CliError::bad_args(
            "--lease and --ignore-lease cannot be set at the same time, choose one",
        ));
    }
    Ok(PutRequest {
        key: bytes_of(&args.key),
        value,
        lease: args.lease,
        prev_kv: args.prev_kv,
        ignore_value: args.ignore_value,
        ignore_lease: args.ignore_lease,
    })
}

/// The DeleteRange request of `del`.
pub fn delete_request(args: &DelArgs) -> Result<DeleteRangeRequest, CliError> {
    let (key, range_end) = key_range(
        &args.key,
        args.range_end.as_deref(),
        args.prefix,
        args.from_key,
    )?;
    Ok(DeleteRangeRequest {
        key,
        range_end,
        prev_kv: args.prev_kv,
    })
}

/// The watched range of `watch` (etcd's rule: `--prefix` on an empty key is every key).
pub fn watch_range(
    key: &OsStr,
    range_end: Option<&OsStr>,
    prefix: bool,
) -> Result<(Vec<u8>, Vec<u8>), CliError> {
    if prefix && range_end.is_some() {
        return Err(CliError::bad_args(
            "unexpected range_end with --prefix: watch either a prefix or a range",
        ));
    }
    key_range(key, range_end, prefix, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vanectl::cli::{Cli, Command};
    use crate::vanectl::exit::Exit;
    use clap::Parser;

    fn get_args(args: &[&str]) -> GetArgs {
        let mut full = vec!["vanectl", "get"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Get(get) => get,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefix_and_from_key_follow_etcd() {
        let r = range_request(&get_args(&["fo", "--prefix"])).unwrap();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"fo"[..], &b"fp"[..])
        );
        let r = range_request(&get_args(&["", "--prefix"])).unwrap();
        assert_eq!((r.key, r.range_end), (vec![0], vec![0]));
        let r = range_request(&get_args(&["foo", "--from-key"])).unwrap();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"foo"[..], &[0u8][..])
        );
        let r = range_request(&get_args(&["a", "z"])).unwrap();
        assert_eq!(
            (r.key.as_slice(), r.range_end.as_slice()),
            (&b"a"[..], &b"z"[..])
        );
    }

    #[test]
    fn conflicting_range_flags_are_bad_args() {
        let error = range_request(&get_args(&["k", "--prefix", "--from-key"])).unwrap_err();
        assert_eq!(error.exit, Exit::BadArgs);
        let error = range_request(&get_args(&["k", "k2", "--prefix"])).unwrap_err();
        assert_eq!(
            error.message.as_deref(),
            Some(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"
            )
        );
    }

    #[test]
    fn sorting_by_key_ascending_is_the_default_order() {
        let r = range_request(&get_args(&["k", "--order=ASCEND"])).unwrap();
        assert_eq!(r.sort_order, PbSortOrder::None as i32);
        let r = range_request(&get_args(&["k", "--sort-by=MODIFY", "--order=DESCEND"])).unwrap();
        assert_eq!(r.sort_order, PbSortOrder::Descend as i32);
        assert_eq!(r.sort_target, PbSortTarget::Mod as i32);
        let r =
            range_request(&get_args(&["k", "--consistency=s", "--rev=3", "--limit=2"])).unwrap();
        assert!(r.serializable);
        assert_eq!((r.revision, r.limit), (3, 2));
    }
}
