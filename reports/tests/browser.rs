//! Opens the rendered report in headless Chromium (Debian's `chromium`) and checks that
//! every chart rendered as a non-empty SVG element and that the page logged no console
//! error. Without Chromium the test says it is skipped; with `CI=true` that is a failure
//! (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use reports::report::write_report;
use reports::results::{HistoryView, Results};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Flags for a closed network and a root user, as this machine needs them.
fn headless(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn report_renders_every_chart_in_a_browser_without_console_errors() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but chromium is not installed (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipped: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let results = Results::load(&fixtures.join("results.json")).unwrap();
    let history: HistoryView =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("history-view.json")).unwrap())
            .unwrap();
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, Some(&history), out.path()).unwrap();
    let url = format!("file://{}", files.index_html.display());
    let profile = tempfile::tempdir().unwrap();

    let dom = headless(&bin, profile.path())
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let html = String::from_utf8_lossy(&dom.stdout);
    let stderr = String::from_utf8_lossy(&dom.stderr);

    // Every chart is an inline <svg> with drawn content inside it.
    let svgs: Vec<&str> = html
        .split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap_or(""))
        .collect();
    assert_eq!(svgs.len(), files.charts.len(), "one <svg> per chart");
    for (svg, chart) in svgs.iter().zip(&files.charts) {
        let shapes = ["<path", "<polyline", "<rect", "<line", "<circle"]
            .iter()
            .map(|t| svg.matches(t).count())
            .sum::<usize>();
        assert!(shapes > 10, "chart {} has only {shapes} shapes", chart.id);
        assert!(svg.contains("<text"), "chart {} has no text", chart.id);
    }
    // Chromium prints page console messages as `CONSOLE(...)` lines on stderr.
    let console_errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE(") || l.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );

    // A screenshot, kept under target/ so a person can look at the page as a browser shows it.
    let shot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/flowbench/report-screenshot.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let r = headless(&bin, profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1280,2400", "--hide-scrollbars", &url])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "the screenshot looks blank ({} bytes)",
        png.len()
    );
}
