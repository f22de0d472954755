//! The results directory of one comparison: every run's report as JSON under a path that
//! says what it was (`workloads/put-64/vane-rep1.json`), and the summary beside them, so
//! that any figure in the table can be traced to the run that produced it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::BenchError;

/// A directory that every file of one comparison goes into.
#[derive(Debug)]
pub struct ResultsDir {
    root: PathBuf,
}

impl ResultsDir {
    /// Creates `root` (and its parents).
    pub fn create(root: &Path) -> Result<ResultsDir, BenchError> {
        super::create_dir(root, "create the results directory")?;
        Ok(ResultsDir {
            root: root.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `value` as pretty JSON to `relative` (directories created as needed) and
    /// returns `relative`, for the summary to point at.
    pub fn write_json(&self, relative: &str, value: &impl Serialize) -> Result<String, BenchError> {
        let json = serde_json::to_string_pretty(value)?;
        self.write_text(relative, &(json + "\n"))
    }

    /// Writes `text` to `relative` (directories created as needed) and returns `relative`.
    pub fn write_text(&self, relative: &str, text: &str) -> Result<String, BenchError> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            super::create_dir(parent, "create a results subdirectory")?;
        }
        std::fs::write(&path, text).map_err(|source| BenchError::WriteReport { path, source })?;
        Ok(relative.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_under_the_root_in_their_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let results = ResultsDir::create(&dir.path().join("compare-1")).unwrap();
        let relative = results
            .write_json(
                "workloads/put-1/vane-rep1.json",
                &serde_json::json!({"a": 1}),
            )
            .unwrap();
        assert_eq!(relative, "workloads/put-1/vane-rep1.json");
        let written = std::fs::read_to_string(results.root().join(&relative)).unwrap();
        assert_eq!(written, "{\n  \"a\": 1\n}\n");
    }
}
