//! `vaned`, a Vane cluster member: configuration, the openraft wiring and peer network,
//! and the etcd v3 services. Filled by the cluster issue; the storage core it builds on
//! is `vane-raft-store`.
