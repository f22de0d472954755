//! The Rust client of Vane and the `vanectl` command-line tool. Filled by the client issue.
