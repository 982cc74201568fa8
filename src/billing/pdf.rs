//! PDFs of the invoice's HTML, printed by a headless Chromium (`invoice --pdf-with`). The
//! HTML is print-ready (A4, no browser header or footer); the PDF is its rendering.
//!
//! A PDF carries the instant it was made, so it is not byte-identical from one rendering
//! to the next: an issued invoice's PDF is printed once, when its file does not exist yet,
//! and kept; a draft's is printed on every run.

use std::path::Path;
use std::time::Duration;

use super::BillingError;

/// How long one document may take to print.
const PRINT_DEADLINE: Duration = Duration::from_secs(60);

pub async fn print(renderer: &Path, html: &Path, pdf: &Path) -> Result<(), BillingError> {
    let failed = |detail: String| BillingError::Pdf {
        path: pdf.to_path_buf(),
        detail,
    };
    let html = std::path::absolute(html).map_err(|e| failed(e.to_string()))?;
    let mut command = tokio::process::Command::new(renderer);
    command
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-pdf-header-footer",
            "--run-all-compositor-stages-before-draw",
        ])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", renderer.display())))?;
    let output = tokio::time::timeout(PRINT_DEADLINE, child.wait_with_output())
        .await
        .map_err(|_| {
            failed(format!(
                "{} took over {PRINT_DEADLINE:?}",
                renderer.display()
            ))
        })?
        .map_err(|e| failed(e.to_string()))?;
    let written = std::fs::metadata(pdf).is_ok_and(|m| m.len() > 0);
    if !output.status.success() || !written {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(failed(format!(
            "{} exited with {}: {last}",
            renderer.display(),
            output.status
        )));
    }
    Ok(())
}
