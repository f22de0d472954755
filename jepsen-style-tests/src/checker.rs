//! The checkers: each takes a paired history and returns a verdict as data.
//!
//! One module per property, so that a failing run points at one file: registers must be
//! linearizable, acknowledged set adds must survive, list-append transactions must be
//! serializable (and strictly so in real time), watches must keep etcd's guarantees, and
//! keys must not vanish while their lease is kept alive.

pub mod append;
pub mod lease;
pub mod linearizable;
pub mod set;
pub mod watch;
