//! The adapters between openraft and Vane's storage. Nothing outside this folder (and
//! `node`'s own adapter) names an openraft type, so an upgrade of the pinned alpha
//! touches these files and few others.

pub mod convert;
pub mod log_store;
pub mod state_machine;
pub mod types;
