//! Jepsen-style verification of Vane: faults, workloads, recorded histories and checkers. Filled by the verification issue.
