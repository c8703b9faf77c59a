//! A lean aligned-column writer for listings that can run to 100k rows (`sockets`).
//!
//! comfy-table keeps every cell of every row as its own object and measures them all at the
//! end: about 1 KiB and 1 µs per row, which for 100k sockets doubled the run time and took
//! 100 MiB. Here rows are formatted twice instead — once to measure, once to write — so memory
//! stays one row whatever the count. The look matches [`super::new_table`].

use std::io::{self, Write};

use crate::report::Column;

/// Rows held to measure the columns before a streamed table starts to flow. A listing this
/// short (nearly every one typed at a terminal) is aligned exactly.
pub const CHUNK: usize = 2048;

/// A table written row by row: the first [`CHUNK`] rows set the widths (with each column's
/// declared widest value once the listing is longer); a later row wider than its column widens
/// it from there on rather than being cut.
pub struct Streamer {
    columns: Vec<Column>,
    right: Vec<usize>,
    held: Vec<Vec<String>>,
    /// Set once the header is out.
    widths: Option<Vec<usize>>,
    line: String,
}

impl Streamer {
    pub fn new(columns: Vec<Column>) -> Streamer {
        Streamer {
            right: right_columns(&columns),
            columns,
            held: Vec::new(),
            widths: None,
            line: String::new(),
        }
    }

    /// One row's cells.
    pub fn push(&mut self, out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
        let Some(widths) = &mut self.widths else {
            self.held.push(cells.to_vec());
            if self.held.len() >= CHUNK {
                // More may come: leave room for the widest declared values.
                self.start(out, true)?;
            }
            return Ok(());
        };
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(width(c));
        }
        write_line(out, &mut self.line, cells, widths, &self.right)
    }

    /// Writes whatever is still held (a listing shorter than the chunk: exact widths).
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.widths.is_none() {
            self.start(out, false)?;
        }
        Ok(())
    }

    fn start(&mut self, out: &mut dyn Write, more: bool) -> io::Result<()> {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|c| {
                let declared = if more { c.widest.unwrap_or(0) } else { 0 };
                width(c.name).max(declared)
            })
            .collect();
        for row in &self.held {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(c));
            }
        }
        let header: Vec<String> = self.columns.iter().map(|c| c.name.to_string()).collect();
        write_line(out, &mut self.line, &header, &widths, &self.right)?;
        for row in std::mem::take(&mut self.held) {
            write_line(out, &mut self.line, &row, &widths, &self.right)?;
        }
        self.widths = Some(widths);
        Ok(())
    }
}

fn spaces(line: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let k = n.min(SPACES.len());
        line.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// Characters, as the terminal counts them for our cells; ASCII (nearly every cell) by length.
fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

fn right_columns(columns: &[Column]) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.right)
        .map(|(i, _)| i)
        .collect()
}

fn write_line(
    out: &mut dyn Write,
    line: &mut String,
    cells: &[String],
    widths: &[usize],
    right: &[usize],
) -> io::Result<()> {
    line.clear();
    let last = cells.len().min(widths.len()).saturating_sub(1);
    for (i, (c, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = w.saturating_sub(width(c));
        if right.contains(&i) {
            spaces(line, pad);
            line.push_str(c);
        } else {
            line.push_str(c);
            // The trim below would take a last column's padding off again: a tenth of a
            // 100k-row table's formatting was padding written to be scanned back.
            if i != last {
                spaces(line, pad);
            }
        }
    }
    let trimmed = line.trim_end();
    out.write_all(trimmed.as_bytes())?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_the_comfy_tables() {
        let data = [["tcp", "5", "10.0.0.1:80"], ["udp", "123", "[::1]:5353"]];
        let mut out = Vec::new();
        let mut s = Streamer::new(vec![
            Column::left("Proto"),
            Column::right("Q"),
            Column::left("Local"),
        ]);
        for row in data {
            s.push(&mut out, &row.map(String::from)).unwrap();
        }
        s.finish(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Proto    Q  Local\n\
             tcp      5  10.0.0.1:80\n\
             udp    123  [::1]:5353\n"
        );
    }

    fn streamed(rows: usize, widest: Option<usize>) -> String {
        let mut cols = vec![Column::left("Name"), Column::right("N")];
        if let Some(w) = widest {
            cols[0] = cols[0].widest(w);
        }
        let mut s = Streamer::new(cols);
        let mut out = Vec::new();
        for i in 0..rows {
            let cells = vec![format!("r{i}"), i.to_string()];
            s.push(&mut out, &cells).unwrap();
        }
        s.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_short_stream_is_aligned_exactly() {
        assert_eq!(streamed(2, Some(30)), "Name  N\nr0    0\nr1    1\n");
        assert_eq!(streamed(0, None), "Name  N\n");
    }

    #[test]
    fn a_long_stream_uses_the_declared_widths_then_grows() {
        let text = streamed(CHUNK + 20_000, Some(8));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), CHUNK + 20_001);
        // Widths from the chunk (N up to 4 digits) and the declared 8 for Name.
        assert_eq!(lines[0], "Name         N");
        assert_eq!(lines[1], "r0           0");
        assert_eq!(lines[CHUNK], format!("r{0}     {0}", CHUNK - 1));
        // Five-digit numbers arrive later: the column widens from there on.
        assert_eq!(lines[10_001], "r10000    10000");
        assert_eq!(lines[10_000], "r9999     9999");
    }

    #[test]
    fn empty_listing_is_just_the_header() {
        let mut out = Vec::new();
        Streamer::new(vec![Column::left("A"), Column::left("B")])
            .finish(&mut out)
            .unwrap();
        assert_eq!(out, b"A  B\n");
    }
}
