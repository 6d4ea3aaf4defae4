//! The expected-failures file and the Markdown report.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::error::ConformanceError;
use crate::run::Outcome;

/// A known failure: one scenario in the cells its `target` and `client` match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// Scenario name (the file name without `.yml`).
    pub scenario: String,
    /// Target label, or `*` for all.
    pub target: String,
    /// Client label, or `*` for all.
    pub client: String,
    /// The reason the failure is accepted.
    pub reason: String,
}

impl ExpectedFailure {
    fn covers(&self, cell: &Cell) -> bool {
        self.scenario == cell.scenario
            && (self.target == "*" || self.target == cell.target)
            && (self.client == "*" || self.client == cell.client)
    }
}

/// Reads the expected-failures file. A missing file means no entries.
pub fn load_expected_failures(path: &Path) -> Result<Vec<ExpectedFailure>, ConformanceError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
        action: format!("reading {}", path.display()),
        source,
    })?;
    let entries: Option<Vec<ExpectedFailure>> =
        serde_yaml::from_str(&text).map_err(|error| ConformanceError::InvalidExpectations {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    let entries = entries.unwrap_or_default();
    if let Some(entry) = entries
        .iter()
        .find(|entry| !["ours", "node", "url", "*"].contains(&entry.target.as_str()))
    {
        return Err(ConformanceError::InvalidExpectations {
            path: path.to_owned(),
            reason: format!(
                "the entry for {} has the target {:?}; expected ours, node, url or *",
                entry.scenario, entry.target
            ),
        });
    }
    if let Some(entry) = entries.iter().find(|entry| entry.reason.trim().is_empty()) {
        return Err(ConformanceError::InvalidExpectations {
            path: path.to_owned(),
            reason: format!("the entry for {} has an empty reason", entry.scenario),
        });
    }
    Ok(entries)
}

/// One scenario in one cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Scenario name.
    pub scenario: String,
    /// Target label.
    pub target: String,
    /// Client label.
    pub client: String,
    /// What happened.
    pub outcome: Outcome,
}

/// A cell's verdict after the expected failures are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passed.
    Pass,
    /// Did not run on this target.
    Skip,
    /// Failed, and the expected-failures file lists it.
    ExpectedFail,
    /// Failed without an entry: the run fails.
    Fail,
    /// Passed although listed as an expected failure: the entry is stale.
    UnexpectedPass,
}

impl Verdict {
    /// Returns the word printed in the matrix.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Skip => "skip",
            Verdict::ExpectedFail => "expected-fail",
            Verdict::Fail => "FAIL",
            Verdict::UnexpectedPass => "unexpected-pass",
        }
    }
}

/// Returns the verdict of `cell` given the expected failures.
pub fn verdict(cell: &Cell, expected: &[ExpectedFailure]) -> Verdict {
    let listed = expected.iter().any(|entry| entry.covers(cell));
    match (&cell.outcome, listed) {
        (Outcome::Skip(_), _) => Verdict::Skip,
        (Outcome::Pass, false) => Verdict::Pass,
        (Outcome::Pass, true) => Verdict::UnexpectedPass,
        (Outcome::Fail(_), true) => Verdict::ExpectedFail,
        (Outcome::Fail(_), false) => Verdict::Fail,
    }
}

/// Renders the Markdown report: one row per scenario, one column per
/// target and client pair, the reasons of every cell that did not pass, and
/// the expected-failure entries that covered a cell, with their reasons.
pub fn markdown(
    scenarios: &[String],
    columns: &[(String, String)],
    cells: &[Cell],
    expected: &[ExpectedFailure],
) -> String {
    let mut text = String::from("# Conformance matrix\n\n| scenario |");
    for (target, client) in columns {
        let _ = write!(text, " {client} → {target} |");
    }
    text.push_str("\n|---|");
    text.push_str(&"---|".repeat(columns.len()));
    text.push('\n');
    for scenario in scenarios {
        let _ = write!(text, "| {scenario} |");
        for (target, client) in columns {
            let cell = cells.iter().find(|cell| {
                &cell.scenario == scenario && &cell.target == target && &cell.client == client
            });
            let label = cell.map_or("-", |cell| verdict(cell, expected).label());
            let _ = write!(text, " {label} |");
        }
        text.push('\n');
    }

    // Grouped by scenario, in the matrix's row order.
    let details: Vec<&Cell> = scenarios
        .iter()
        .flat_map(|scenario| {
            cells
                .iter()
                .filter(move |cell| &cell.scenario == scenario && cell.outcome != Outcome::Pass)
        })
        .collect();
    if !details.is_empty() {
        text.push_str("\n## Details\n\n");
        for cell in details {
            let reason = match &cell.outcome {
                Outcome::Fail(reason) | Outcome::Skip(reason) => reason.as_str(),
                Outcome::Pass => "",
            };
            let _ = writeln!(
                text,
                "- {} ({} → {}), {}: `{}`",
                cell.scenario,
                cell.client,
                cell.target,
                verdict(cell, expected).label(),
                reason.replace('`', "'").replace('\n', " ")
            );
        }
    }

    let used: Vec<&ExpectedFailure> = expected
        .iter()
        .filter(|entry| cells.iter().any(|cell| entry.covers(cell)))
        .collect();
    if !used.is_empty() {
        text.push_str("\n## Known differences\n\n");
        for entry in used {
            let _ = writeln!(
                text,
                "- {} (client {}, target {}): {}",
                entry.scenario,
                entry.client,
                entry.target,
                entry.reason.trim().replace('\n', " ")
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(outcome: Outcome) -> Cell {
        Cell {
            scenario: "rpc".to_owned(),
            target: "node".to_owned(),
            client: "js".to_owned(),
            outcome,
        }
    }

    fn entry(target: &str, client: &str) -> ExpectedFailure {
        ExpectedFailure {
            scenario: "rpc".to_owned(),
            target: target.to_owned(),
            client: client.to_owned(),
            reason: "known".to_owned(),
        }
    }

    #[test]
    fn verdict_applies_expected_failures() {
        let failed = cell(Outcome::Fail("x".to_owned()));
        assert_eq!(verdict(&failed, &[]), Verdict::Fail);
        assert_eq!(
            verdict(&failed, &[entry("node", "*")]),
            Verdict::ExpectedFail
        );
        assert_eq!(verdict(&failed, &[entry("ours", "*")]), Verdict::Fail);
        assert_eq!(verdict(&failed, &[entry("*", "rust")]), Verdict::Fail);
        assert_eq!(
            verdict(&cell(Outcome::Pass), &[entry("*", "*")]),
            Verdict::UnexpectedPass
        );
        assert_eq!(
            verdict(&cell(Outcome::Skip("s".to_owned())), &[]),
            Verdict::Skip
        );
    }

    #[test]
    fn expected_failures_reject_empty_reason() {
        let folder =
            std::env::temp_dir().join(format!("conformance-expect-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("temporary folder");
        let path = folder.join("expected.yml");
        std::fs::write(
            &path,
            "- {scenario: a, target: '*', client: '*', reason: ' '}\n",
        )
        .expect("write file");
        let error = load_expected_failures(&path).expect_err("empty reason");
        assert!(error.to_string().contains("empty reason"), "{error}");

        std::fs::write(
            &path,
            "- {scenario: a, target: '*', client: '*', reason: r, extra: 1}\n",
        )
        .expect("write file");
        assert!(load_expected_failures(&path).is_err());
        std::fs::write(
            &path,
            "- {scenario: a, target: nodejs, client: '*', reason: r}\n",
        )
        .expect("write file");
        let error = load_expected_failures(&path).expect_err("unknown target");
        assert!(error.to_string().contains("\"nodejs\""), "{error}");
        std::fs::write(&path, "").expect("write file");
        assert!(
            load_expected_failures(&path)
                .expect("empty file")
                .is_empty()
        );
        std::fs::remove_dir_all(&folder).expect("remove folder");
    }

    #[test]
    fn markdown_lists_failures() {
        let cells = [cell(Outcome::Fail("step 2: timed out".to_owned()))];
        let text = markdown(
            &["rpc".to_owned()],
            &[("node".to_owned(), "js".to_owned())],
            &cells,
            &[],
        );
        assert!(text.contains("| rpc | FAIL |"), "{text}");
        assert!(text.contains("step 2: timed out"), "{text}");
        assert!(!text.contains("Known differences"), "{text}");
    }

    #[test]
    fn markdown_lists_reasons_of_expected_failures() {
        let cells = [cell(Outcome::Fail("step 2: denied".to_owned()))];
        let unused = ExpectedFailure {
            scenario: "other".to_owned(),
            ..entry("*", "*")
        };
        let text = markdown(
            &["rpc".to_owned()],
            &[("node".to_owned(), "js".to_owned())],
            &cells,
            &[entry("node", "*"), unused],
        );
        assert!(text.contains("| rpc | expected-fail |"), "{text}");
        assert!(
            text.contains("- rpc (client *, target node): known"),
            "{text}"
        );
        assert!(!text.contains("- other"), "{text}");
    }
}
