//! `-w table`: the ASCII tables etcdctl 3.4 draws with olekukonko/tablewriter for member
//! lists and endpoint reports: upper-case centred headers, cells aligned right.

use super::{Report, health_rows, member_rows, status_rows};

/// The table rendering of `report` (only the reports `check_supported` lets through).
pub(super) fn render(report: &Report<'_>) -> String {
    match *report {
        Report::MemberList(response) => table(
            &[
                "ID",
                "Status",
                "Name",
                "Peer Addrs",
                "Client Addrs",
                "Is Learner",
            ],
            &member_rows(response),
        ),
        Report::EndpointStatus(statuses) => table(
            &[
                "endpoint",
                "ID",
                "version",
                "db size",
                "is leader",
                "is learner",
                "raft term",
                "raft index",
                "raft applied index",
                "errors",
            ],
            &status_rows(statuses),
        ),
        Report::EndpointHealth(healths) => table(
            &["endpoint", "health", "took", "error"],
            &health_rows(healths),
        ),
        Report::Compaction { revision } => format!("compacted revision {revision}\n"),
        Report::SnapshotSaved { path } => format!("Snapshot saved at {path}\n"),
        _ => String::new(),
    }
}

/// Draws `rows` under `headers`, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let mut out = rule.clone();
    for (header, width) in headers.iter().zip(&widths) {
        let pad = width - header.chars().count();
        let left = pad / 2;
        out.push_str(&format!(
            "| {}{}{} ",
            " ".repeat(left),
            header,
            " ".repeat(pad - left)
        ));
    }
    out.push_str("|\n");
    out.push_str(&rule);
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(&format!("| {cell:>width$} "));
        }
        out.push_str("|\n");
    }
    out.push_str(&rule);
    out
}

#[cfg(test)]
mod tests {
    use super::super::EndpointHealth;
    use super::*;
    use std::time::Duration;
    use vane_proto::etcdserverpb::{Member, MemberListResponse};

    #[test]
    fn member_list_matches_etcdctl() {
        let list = MemberListResponse {
            header: None,
            members: vec![
                Member {
                    id: 0x2e1259d415f2a040,
                    name: "default".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                    client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                    is_learner: false,
                },
                Member {
                    id: 0xf9af10ed52107502,
                    name: String::new(),
                    peer_ur_ls: vec!["http://127.0.0.1:19558".into()],
                    client_ur_ls: vec![],
                    is_learner: true,
                },
            ],
        };
        assert_eq!(
            render(&Report::MemberList(&list)),
            "\
+------------------+-----------+---------+------------------------+------------------------+------------+
|        ID        |  STATUS   |  NAME   |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+-----------+---------+------------------------+------------------------+------------+
| 2e1259d415f2a040 |   started | default | http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |
| f9af10ed52107502 | unstarted |         | http://127.0.0.1:19558 |                        |       true |
+------------------+-----------+---------+------------------------+------------------------+------------+
"
        );
    }

    #[test]
    fn endpoint_health_matches_etcdctl() {
        let healths = [EndpointHealth {
            endpoint: "127.0.0.1:23790".into(),
            healthy: true,
            took: Duration::from_nanos(1_168_832),
            error: String::new(),
        }];
        assert_eq!(
            render(&Report::EndpointHealth(&healths)),
            "\
+-----------------+--------+------------+-------+
|    ENDPOINT     | HEALTH |    TOOK    | ERROR |
+-----------------+--------+------------+-------+
| 127.0.0.1:23790 |   true | 1.168832ms |       |
+-----------------+--------+------------+-------+
"
        );
    }
}
