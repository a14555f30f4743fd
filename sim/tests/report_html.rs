//! report.html for three runs (a pass, a replication failure, a group failure): the page is
//! self-contained (no script, no link to the network), draws a lane per client process, a
//! fault band, the anomaly list linked to its ops, leadership and offset plots. Where
//! Chromium is installed (`.ci/run` installs Debian's `chromium`), each page is loaded
//! headless: it must load, and its rendered DOM must still hold the lanes. Without Chromium
//! the browser half says so on stderr and checks nothing more.

use sim::report::write_report;
use sim::runner::run_seed;
use sim::scenario::load;
use std::path::{Path, PathBuf};
use std::process::Command;

fn report(name: &str, seed: u64, base: &Path) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
    let scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
    let outcome = run_seed(&scenario, None, seed);
    let dir = write_report(base, &outcome, &scenario).expect("the report is written");
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).expect("report.html");
    (page, html)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|binary| {
        Command::new(binary).arg("--version").output().is_ok_and(|o| o.status.success())
    })
}

#[test]
fn three_reports_draw_their_runs_and_load_in_a_browser() {
    let base = std::env::temp_dir().join(format!("kafkasim-html-{}", std::process::id()));
    let runs =
        [("quickstart", 1, "pass"), ("unsynced-loss", 3, "safety"), ("zombie-commit", 1, "safety")];
    let browser = chromium();
    if browser.is_none() {
        eprintln!("report_html: chromium is not installed: the pages are checked as text only");
    }
    for (name, seed, verdict) in runs {
        let (page, html) = report(name, seed, &base);
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"), "{name}");
        assert!(html.contains(&format!("class=\"verdict {verdict}\"")), "{name}: verdict");
        let links = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!html.contains("<script"), "{name}: no script");
        assert!(!links.contains("http://") && !links.contains("https://"), "{name}: no network");
        let lanes = html.matches("class=\"lane\"").count();
        assert!(lanes >= 2, "{name}: {lanes} process lanes");
        if name == "zombie-commit" {
            // (quickstart and unsynced-loss: one broker without a quorum elects nobody)
            assert!(html.contains("<h2>Leadership per partition</h2>"), "{name}");
        }
        assert!(html.contains("<h2>Offsets over time</h2>"), "{name}");
        if verdict == "safety" {
            assert!(html.contains("class=\"fault\""), "{name}: a fault band");
            assert!(html.contains("href=\"#op-"), "{name}: anomalies link their ops");
        }
        let Some(browser) = browser else { continue };
        let shot = page.with_file_name("report.png");
        let output = Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(
            output.status.success(),
            "{name}: chromium: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let png = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(png > 10_000, "{name}: a screenshot of {png} bytes");
        let dom = Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert_eq!(
            dom.matches("class=\"lane\"").count(),
            lanes,
            "{name}: the browser kept every lane"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
