//! Plain-text tables for terminals: the first column left-aligned, numbers right-aligned,
//! every column as wide as its widest cell, so runs printed one after another line up.

/// Space between columns.
const COLUMN_GAP: &str = "  ";

/// Renders `header` and `rows` as aligned lines, each ending in a newline. Rows shorter than
/// the header leave their last cells empty.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate().take(widths.len()) {
            widths[column] = widths[column].max(cell.chars().count());
        }
    }
    let header_row: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header_row).chain(rows) {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(column, &width)| {
                let cell = row.get(column).map_or("", String::as_str);
                if column == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        text.push_str(cells.join(COLUMN_GAP).trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let rows = vec![
            vec!["put".to_owned(), "7".to_owned(), "1.250".to_owned()],
            vec![
                "get-serializable".to_owned(),
                "123456".to_owned(),
                "10.000".to_owned(),
            ],
        ];
        let table = render_table(&["operation", "count", "p50 ms"], &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines.iter().all(|line| line.len() == lines[0].len()),
            "{table}"
        );
        assert_eq!(lines[0], "operation          count  p50 ms");
        assert_eq!(lines[1], "put                    7   1.250");
        assert_eq!(lines[2], "get-serializable  123456  10.000");
    }
}
