//! Pages in headless Chromium (Debian's package; scripts/test.sh installs it).

use std::process::Command;

pub fn chromium() -> String {
    std::env::var("SIMTALLY_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The page's DOM after its scripts ran, and what Chromium logged.
pub fn render(url: &str, screenshot: &std::path::Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let common_flags = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--enable-logging=stderr".to_owned(),
        "--v=0".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
        "--window-size=1200,1400".to_owned(),
        "--virtual-time-budget=10000".to_owned(),
    ];
    let run = |extra: &str| {
        Command::new(chromium())
            .args(&common_flags)
            .arg(extra)
            .arg(url)
            .output()
            .unwrap_or_else(|e| panic!("{} runs (scripts/test.sh installs it): {e}", chromium()))
    };
    let dom = run("--dump-dom");
    run(&format!("--screenshot={}", screenshot.display()));
    (
        String::from_utf8_lossy(&dom.stdout).into_owned(),
        String::from_utf8_lossy(&dom.stderr).into_owned(),
    )
}
