//! Starting, stopping and inspecting a local cluster of real `vaned` processes. Filled by the cluster issue.
