//! `snapshot save`: streams a member's snapshot into `<file>.part`, checks the SHA-256
//! that ends the stream (etcd's format, which vaned follows), syncs and renames it into
//! place, so a file at `<file>` is always a complete snapshot. Unlike etcdctl, which
//! insists on exactly one endpoint, it tries the `--endpoints` in order until one
//! member delivers a whole snapshot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use vane_client::Client;

use super::super::cli::SnapshotCommand;
use super::super::exit::{CliError, Exit};
use super::super::output::{Report, ReportKind};
use super::Context;

/// Length of the SHA-256 that ends a snapshot stream.
const CHECKSUM_BYTES: usize = 32;

/// `snapshot ...`.
pub async fn snapshot(context: &Context, command: SnapshotCommand) -> Result<(), CliError> {
    let SnapshotCommand::Save { file } = command;
    context.printer.check_supported(ReportKind::SnapshotSaved)?;
    let part = part_path(&file);
    let client = context.connect().await?;
    let mut failures = Vec::new();
    for endpoint in &context.global.endpoints {
        match save_from(&client, endpoint, &part).await {
            Ok(()) => {
                std::fs::rename(&part, &file).map_err(|e| {
                    CliError::new(
                        Exit::Interrupted,
                        format!(
                            "could not rename {} to {} ({e})",
                            part.display(),
                            file.display()
                        ),
                    )
                })?;
                let shown = file.display().to_string();
                return context.emit(&Report::SnapshotSaved { path: &shown });
            }
            Err(Failure::Local(error)) => {
                let _ = std::fs::remove_file(&part);
                return Err(error);
            }
            Err(Failure::Member(why)) => failures.push(format!("{endpoint}: {why}")),
        }
    }
    let _ = std::fs::remove_file(&part);
    Err(CliError::new(
        Exit::Interrupted,
        format!("no member delivered a snapshot ({})", failures.join("; ")),
    ))
}

/// `<file>.part`, where the snapshot is written until it is complete.
fn part_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".part");
    PathBuf::from(name)
}

/// Why one attempt failed.
enum Failure {
    /// The local file could not be written: no other member will do better.
    Local(CliError),
    /// The member failed or sent a damaged snapshot: try the next.
    Member(String),
}

async fn save_from(client: &Client, endpoint: &str, part: &Path) -> Result<(), Failure> {
    let local = |what: &str, e: std::io::Error| {
        Failure::Local(CliError::new(
            Exit::Interrupted,
            format!("could not {what} {} ({e})", part.display()),
        ))
    };
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| local("open", e))?;
    let mut stream = client
        .snapshot(endpoint)
        .await
        .map_err(|e| Failure::Member(e.message().to_string()))?;
    let mut hasher = Sha256::new();
    // The last CHECKSUM_BYTES seen so far: the checksum, once the stream has ended.
    let mut tail: Vec<u8> = Vec::with_capacity(CHECKSUM_BYTES);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Member(e.message().to_string()))?;
        file.write_all(&chunk.blob)
            .await
            .map_err(|e| local("write", e))?;
        tail.extend_from_slice(&chunk.blob);
        if tail.len() > CHECKSUM_BYTES {
            let hashed = tail.len() - CHECKSUM_BYTES;
            hasher.update(&tail[..hashed]);
            tail.drain(..hashed);
        }
    }
    if tail.len() < CHECKSUM_BYTES {
        return Err(Failure::Member(
            "the snapshot stream ended before its checksum".to_string(),
        ));
    }
    if hasher.finalize().as_slice() != tail.as_slice() {
        return Err(Failure::Member(
            "the snapshot's SHA-256 does not match its content".to_string(),
        ));
    }
    file.sync_all().await.map_err(|e| local("sync", e))?;
    Ok(())
}
