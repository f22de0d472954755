//! The run at a glance: `timeline.html`, one SVG with the faults, who led, which nodes
//! answered, and how operations ended, second by second, on one time axis. Hovering a
//! fault shows what exactly was done.

use std::fmt::Write as _;

use crate::history::{Call, Operation, RecordType};
use crate::leader_monitor::LeaderSample;

const WIDTH_PX: f64 = 1200.0;
const LEFT_PX: f64 = 90.0;
const RIGHT_PX: f64 = 20.0;
const ROW_PX: f64 = 22.0;
const OPERATIONS_PX: f64 = 80.0;

/// One fault as drawn: from its start's invocation to its stop's completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultInterval {
    /// The nemesis family.
    pub fault: String,
    /// What was done and seen.
    pub detail: String,
    /// When the fault started, on the run's clock.
    pub start_ns: u64,
    /// When it was healed (the end of the run if it never was).
    pub end_ns: u64,
}

/// The faults of a history, in order.
pub fn fault_intervals(records: &[Operation]) -> Vec<FaultInterval> {
    let end_of_run = records.last().map_or(0, |record| record.time_ns);
    let mut intervals: Vec<FaultInterval> = Vec::new();
    let mut open: Option<FaultInterval> = None;
    for record in records {
        let Call::Nemesis(action) = &record.call else {
            continue;
        };
        match (action.action.as_str(), record.record_type) {
            ("start", RecordType::Invoke) | ("heal-all", RecordType::Invoke) => {
                if let Some(unclosed) = open.take() {
                    intervals.push(unclosed);
                }
                open = Some(FaultInterval {
                    fault: if action.action == "heal-all" {
                        "heal".to_string()
                    } else {
                        action.fault.clone()
                    },
                    detail: action.detail.clone(),
                    start_ns: record.time_ns,
                    end_ns: end_of_run,
                });
            }
            ("start", _) => {
                if let Some(interval) = &mut open {
                    interval.detail = describe_completion(record, &action.detail);
                }
            }
            ("stop", RecordType::Invoke) => {}
            ("stop", _) | ("heal-all", _) => {
                if let Some(mut interval) = open.take() {
                    interval.end_ns = record.time_ns;
                    let seen = describe_completion(record, &action.detail);
                    if interval.detail.is_empty() {
                        interval.detail = seen;
                    } else if !seen.is_empty() {
                        interval.detail = format!("{} → {seen}", interval.detail);
                    }
                    intervals.push(interval);
                }
            }
            _ => {}
        }
    }
    intervals.extend(open);
    intervals
}

fn describe_completion(record: &Operation, detail: &str) -> String {
    match &record.error {
        Some(error) => format!("failed: {error}"),
        None => detail.to_string(),
    }
}

fn fault_color(fault: &str) -> &'static str {
    match fault {
        "partition" => "#e07b39",
        "loss" => "#d9a441",
        "kill" => "#c0392b",
        "pause" => "#8e44ad",
        "clock" => "#2980b9",
        "membership" => "#16a085",
        "disk" => "#7f8c8d",
        _ => "#95a5a6",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline page for a run.
pub fn render_timeline(
    title: &str,
    records: &[Operation],
    samples: &[LeaderSample],
    nodes: usize,
) -> String {
    let end_ns = records
        .last()
        .map_or(0, |record| record.time_ns)
        .max(samples.last().map_or(0, |sample| sample.time_ns))
        .max(1);
    let plot_px = WIDTH_PX - LEFT_PX - RIGHT_PX;
    let x = |time_ns: u64| LEFT_PX + plot_px * (time_ns as f64 / end_ns as f64);
    let faults_y = 30.0;
    let nodes_y = faults_y + ROW_PX + 10.0;
    let operations_y = nodes_y + ROW_PX * nodes as f64 + 20.0;
    let height = operations_y + OPERATIONS_PX + 40.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    // Time axis, one tick per 10 s (or per second for short runs).
    let seconds = end_ns / 1_000_000_000;
    let step = if seconds > 30 { 10 } else { 1 };
    for second in (0..=seconds).step_by(step as usize) {
        let tick_x = x(second * 1_000_000_000);
        let _ = write!(
            svg,
            r##"<line x1="{tick_x:.1}" y1="20" x2="{tick_x:.1}" y2="{:.1}" stroke="#eee"/><text x="{tick_x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{second}s</text>"##,
            operations_y + OPERATIONS_PX,
            operations_y + OPERATIONS_PX + 15.0
        );
    }

    let _ = write!(
        svg,
        r##"<text x="5" y="{:.1}" fill="#333">faults</text>"##,
        faults_y + 15.0
    );
    for interval in fault_intervals(records) {
        let start = x(interval.start_ns);
        let width = (x(interval.end_ns) - start).max(2.0);
        let _ = write!(
            svg,
            r#"<rect x="{start:.1}" y="{faults_y:.1}" width="{width:.1}" height="{:.1}" fill="{}" opacity="0.8"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" fill="white">{}</text>"#,
            ROW_PX - 4.0,
            fault_color(&interval.fault),
            escape(&interval.fault),
            escape(&interval.detail),
            start + 2.0,
            faults_y + 13.0,
            if width > 40.0 {
                escape(&interval.fault)
            } else {
                String::new()
            },
        );
    }

    for slot in 1..=nodes {
        let row_y = nodes_y + ROW_PX * (slot - 1) as f64;
        let _ = write!(
            svg,
            r##"<text x="5" y="{:.1}" fill="#333">n{slot}</text><line x1="{LEFT_PX}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ccc"/>"##,
            row_y + 14.0,
            row_y + 9.0,
            WIDTH_PX - RIGHT_PX,
            row_y + 9.0
        );
        for (index, sample) in samples.iter().enumerate() {
            let next_ns = samples.get(index + 1).map_or(end_ns, |next| next.time_ns);
            let (color, label) = if sample.leader == Some(slot) {
                (
                    "#27ae60",
                    format!("leader, term {}", sample.term.unwrap_or(0)),
                )
            } else if !sample.answered.contains(&slot) {
                ("#e74c3c", "did not answer Status".to_string())
            } else {
                continue;
            };
            let start = x(sample.time_ns);
            let _ = write!(
                svg,
                r#"<rect x="{start:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>n{slot}: {label}</title></rect>"#,
                row_y + 3.0,
                (x(next_ns) - start).max(1.0),
                ROW_PX - 8.0
            );
        }
    }

    // Operations per second: ok (green), fail (orange), info (red), stacked.
    let buckets = (end_ns / 1_000_000_000 + 1) as usize;
    let mut counts = vec![(0usize, 0usize, 0usize); buckets];
    for record in records {
        if matches!(record.call, Call::Nemesis(_)) {
            continue;
        }
        let bucket = ((record.time_ns / 1_000_000_000) as usize).min(buckets - 1);
        match record.record_type {
            RecordType::Ok => counts[bucket].0 += 1,
            RecordType::Fail => counts[bucket].1 += 1,
            RecordType::Info => counts[bucket].2 += 1,
            RecordType::Invoke => {}
        }
    }
    let busiest = counts
        .iter()
        .map(|(ok, fail, info)| ok + fail + info)
        .max()
        .unwrap_or(1)
        .max(1);
    let _ = write!(
        svg,
        r##"<text x="5" y="{:.1}" fill="#333">ops/s</text><text x="5" y="{:.1}" fill="#999">max {busiest}</text>"##,
        operations_y + 15.0,
        operations_y + 30.0
    );
    let bar_px = plot_px / buckets as f64;
    for (second, (ok, fail, info)) in counts.iter().enumerate() {
        let mut top = operations_y + OPERATIONS_PX;
        for (count, color) in [(*ok, "#27ae60"), (*fail, "#f39c12"), (*info, "#c0392b")] {
            if count == 0 {
                continue;
            }
            let bar_height = OPERATIONS_PX * count as f64 / busiest as f64;
            top -= bar_height;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{bar_height:.1}" fill="{color}"><title>{second}s: {ok} ok, {fail} fail, {info} info</title></rect>"#,
                LEFT_PX + bar_px * second as f64,
                (bar_px - 1.0).max(0.5)
            );
        }
    }
    svg.push_str("</svg>");

    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body style=\"font-family:sans-serif\">\n<h3>{title}</h3>\n<p>Faults (hover for details), leaders (green) and nodes that did not answer Status (red) from polling every node twice a second, and operations per second: ok (green), fail (orange), info (red).</p>\n{svg}\n</body></html>\n",
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NemesisAction;
    use crate::recorder::HistoryRecorder;

    fn nemesis(action: &str, detail: &str) -> Call {
        Call::Nemesis(NemesisAction {
            action: action.to_string(),
            fault: "kill".to_string(),
            detail: detail.to_string(),
        })
    }

    #[test]
    fn a_fault_spans_from_its_start_to_its_heal_and_the_page_names_it() {
        let mut recorder = HistoryRecorder::new();
        recorder.invoke(9, None, nemesis("start", "plan"), 1_000_000_000);
        recorder.complete(
            9,
            RecordType::Ok,
            None,
            nemesis("start", "kill -9 n2"),
            1_100_000_000,
        );
        recorder.invoke(1, Some("k"), Call::Read(None), 1_500_000_000);
        recorder.complete(
            1,
            RecordType::Ok,
            Some("k"),
            Call::Read(Some(1)),
            1_600_000_000,
        );
        recorder.invoke(9, None, nemesis("stop", ""), 4_000_000_000);
        recorder.complete(
            9,
            RecordType::Ok,
            None,
            nemesis("stop", "restarted n2"),
            4_200_000_000,
        );
        let records = recorder.into_records();
        let intervals = fault_intervals(&records);
        assert_eq!(intervals.len(), 1);
        assert_eq!(intervals[0].start_ns, 1_000_000_000);
        assert_eq!(intervals[0].end_ns, 4_200_000_000);
        assert_eq!(intervals[0].detail, "kill -9 n2 → restarted n2");

        let samples = [LeaderSample {
            time_ns: 0,
            answered: vec![1, 3],
            leader: Some(1),
            term: Some(2),
        }];
        let page = render_timeline("register <test>", &records, &samples, 3);
        assert!(page.contains("kill -9 n2"));
        assert!(page.contains("register &lt;test&gt;"));
        assert!(page.contains("n2: did not answer Status"));
    }
}
