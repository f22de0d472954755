//! Finding the `vaned` binary without building it: the launcher and its tests run
//! whatever the last build left, and say how to build it when there is none.

use std::path::{Path, PathBuf};

use crate::error::{ClusterError, Result};

/// The environment variable that names the `vaned` binary explicitly.
pub const VANED_ENV: &str = "VANED";

/// The `vaned` to run: `explicit` if given, else `$VANED`, else the first that exists of
/// `$CARGO_TARGET_DIR/debug/vaned`, next to the running executable (or its parent, for
/// test binaries in `deps/`), `~/.cache/vane-target/debug/vaned` (the Makefile's target
/// directory), this checkout's `target/debug/vaned`, and `vaned` on `PATH`.
pub fn locate_vaned(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return existing(path).ok_or_else(|| not_found(&[path.to_path_buf()]));
    }
    if let Some(path) = std::env::var_os(VANED_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return existing(&path).ok_or_else(|| not_found(&[path]));
    }
    let candidates = candidates();
    candidates
        .iter()
        .find_map(|path| existing(path))
        .ok_or_else(|| not_found(&candidates))
}

fn candidates() -> Vec<PathBuf> {
    let binary = format!("vaned{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(target).join("debug").join(&binary));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(&binary));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(&binary));
        }
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        candidates.push(
            PathBuf::from(home)
                .join(".cache/vane-target/debug")
                .join(&binary),
        );
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug")
            .join(&binary),
    );
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join(&binary)));
    }
    candidates
}

/// `path`, absolute, if it is a file.
fn existing(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        std::fs::canonicalize(path).ok()
    } else {
        None
    }
}

fn not_found(searched: &[PathBuf]) -> ClusterError {
    ClusterError::VanedNotFound {
        searched: searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_path_that_does_not_exist_says_how_to_build() {
        let err = locate_vaned(Some(Path::new("/nonexistent/vaned"))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/vaned"), "{message}");
        assert!(
            message.contains("cargo build -p vane-node --bin vaned"),
            "{message}"
        );
    }
}
