//! Go's `text/tabwriter` as kubeadm and kubectl use it: cells are separated by
//! tabs; every column but the last is padded to the widest cell plus `padding`,
//! and at least `minwidth`.

/// Formats `rows` (each a list of cells) like a Go tabwriter flushed once.
pub(crate) fn tabwrite(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![minwidth; cols.saturating_sub(1)];
    for row in rows {
        for (j, cell) in row.iter().enumerate().take(cols.saturating_sub(1)) {
            if j + 1 < row.len() {
                widths[j] = widths[j].max(cell.chars().count() + padding);
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (j, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < row.len() {
                let pad = widths[j].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_widest_cell_plus_padding_with_a_minimum() {
        let rows = vec![
            vec!["NAME".to_string(), "STATUS".into(), "AGE".into()],
            vec!["bettley".to_string(), "NotReady".into(), "5m".into()],
        ];
        assert_eq!(
            tabwrite(&rows, 6, 3),
            "NAME      STATUS     AGE\nbettley   NotReady   5m\n"
        );
    }
}
