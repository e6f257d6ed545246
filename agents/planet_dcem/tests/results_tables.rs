//! Every results table traces to committed raw files: `scripts/results_tables.sh` regenerates
//! the tables from the run folders under docs/results (with this build's agent binaries) into a
//! temporary folder, and each must equal the committed one; and every table the README or the
//! docs quote between `<!-- results: PATH -->` and `<!-- /results -->` must equal the file
//! PATH (relative to the repository root).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn markdown_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            markdown_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

#[test]
fn committed_tables_regenerate_from_their_raw_files() {
    let out = std::env::temp_dir().join(format!("dcem-results-tables-{}", std::process::id()));
    // The other agents' binaries are this build's too: the workspace's test run builds them
    // next to planet_dcem's.
    let bins = Path::new(env!("CARGO_BIN_EXE_planet_dcem"))
        .parent()
        .unwrap();
    let mut cmd = Command::new(root().join("scripts/results_tables.sh"));
    cmd.arg(&out)
        .env("PLANET_DCEM", env!("CARGO_BIN_EXE_planet_dcem"));
    for (var, bin) in [
        ("CARTPOLE_EMBED", "cartpole_embed"),
        ("PPO", "ppo"),
        ("REGRESSION_EBM", "regression_ebm"),
    ] {
        let path = bins.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.exists(),
            "{} is missing: run this test with the workspace's (cargo test --workspace), which \
             builds every agent's binary",
            path.display()
        );
        cmd.env(var, path);
    }
    let status = cmd.status().expect("cannot run scripts/results_tables.sh");
    assert!(status.success(), "scripts/results_tables.sh failed");
    let mut made = Vec::new();
    markdown_under(&out, &mut made);
    assert!(
        made.len() >= 2,
        "the script wrote {} tables: {made:?}",
        made.len()
    );
    let mut stale = Vec::new();
    for m in &made {
        let rel = m.strip_prefix(&out).unwrap();
        let committed = root().join("docs/results").join(rel);
        let want = std::fs::read_to_string(&committed)
            .unwrap_or_else(|_| panic!("{} is regenerated but not committed", committed.display()));
        if std::fs::read_to_string(m).unwrap() != want {
            stale.push(rel.display().to_string());
        }
    }
    std::fs::remove_dir_all(&out).ok();
    assert!(
        stale.is_empty(),
        "these tables differ from what their raw files give (run scripts/results_tables.sh and \
         commit the result): {stale:?}"
    );
}

#[test]
fn quoted_tables_equal_their_files() {
    let mut docs = vec![root().join("README.md")];
    markdown_under(&root().join("docs/book"), &mut docs);
    let mut quoted = 0;
    for doc in docs.iter().filter(|d| d.exists()) {
        let text = std::fs::read_to_string(doc).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<!-- results: ") {
            let after = &rest[at + "<!-- results: ".len()..];
            let (path, body) = after
                .split_once(" -->\n")
                .unwrap_or_else(|| panic!("{}: an unclosed results marker", doc.display()));
            let (block, next) = body.split_once("<!-- /results -->").unwrap_or_else(|| {
                panic!(
                    "{}: results: {path} has no <!-- /results -->",
                    doc.display()
                )
            });
            let file = std::fs::read_to_string(root().join(path))
                .unwrap_or_else(|_| panic!("{}: quotes {path}, which is missing", doc.display()));
            assert_eq!(
                block.trim(),
                file.trim(),
                "{} quotes {path} but differs from it (copy the file in again)",
                doc.display()
            );
            quoted += 1;
            rest = next;
        }
    }
    assert!(quoted >= 1, "no document quotes a results table");
}
