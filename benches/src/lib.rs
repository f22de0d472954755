//! A load generator speaking the etcd v3 API, to measure Vane and etcd side by side. Filled by the benchmark issue.
