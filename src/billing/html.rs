//! HTML for the rendered documents: text escaped for HTML and XML, and a titled table.

use std::fmt::Write;

/// A table under a heading: `header`'s columns and a row per item ("none" without any).
pub(super) fn section(
    h: &mut String,
    title: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = write!(h, "<h2>{}</h2>\n<table><thead><tr>", esc(title));
    for name in header {
        let _ = write!(h, "<th>{}</th>", esc(name));
    }
    h.push_str("</tr></thead><tbody>\n");
    let mut empty = true;
    for row in rows {
        empty = false;
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{}</td>", esc(&cell));
        }
        h.push_str("</tr>\n");
    }
    if empty {
        let _ = writeln!(h, "<tr><td colspan=\"{}\">none</td></tr>", header.len());
    }
    h.push_str("</tbody></table>\n");
}

/// Text for HTML and XML: markup characters escaped, control characters blanked.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Neither XML 1.0 nor a printed page has a place for other control characters.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
