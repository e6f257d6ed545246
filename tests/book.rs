//! The book (docs/SUMMARY.md and docs/book/*.md) holds together: every page is in the table of
//! contents and every entry is a page; every `{{#include FILE[:ANCHOR]}}` names a file that
//! exists and, where it names an anchor, one that the file opens and closes; code in the book is
//! included from files the test command compiles or runs, never pasted (a fenced `rust` or
//! `python` block holds one include and nothing else); and every relative link or image points
//! at a file or folder that exists. `scripts/build_book.sh` renders it with the pinned mdbook.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs/book"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// The targets of markdown links and images `[text](target)` on one line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_page_is_in_the_summary_and_every_entry_is_a_page() {
    let summary = std::fs::read_to_string(root().join("docs/SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = summary
        .lines()
        .flat_map(link_targets)
        .map(|t| root().join("docs").join(t))
        .collect();
    for entry in &listed {
        assert!(
            entry.is_file(),
            "SUMMARY.md lists {}, which does not exist",
            entry.display()
        );
    }
    for page in pages() {
        assert!(
            listed.contains(&page),
            "{} is not in docs/SUMMARY.md",
            page.display()
        );
    }
}

#[test]
fn includes_resolve_and_code_is_never_pasted() {
    let mut includes = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let dir = page.parent().unwrap();
        let mut fence: Option<(String, Vec<String>, usize)> = None;
        for (n, line) in text.lines().enumerate() {
            if let Some(spec) = line.trim().strip_prefix("{{#include ") {
                let spec = spec.strip_suffix("}}").expect("an include closes with }}");
                let (file, anchor) = match spec.rsplit_once(':') {
                    Some((f, a)) if !a.contains('/') => (f, Some(a)),
                    _ => (spec, None),
                };
                let path = dir.join(file);
                let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    panic!("{name}:{}: includes {}: {e}", n + 1, path.display())
                });
                if let Some(a) = anchor {
                    for mark in [format!("ANCHOR: {a}"), format!("ANCHOR_END: {a}")] {
                        assert!(
                            source.lines().any(|l| l.trim_start().ends_with(&mark)
                                && (l.trim_start().starts_with("//")
                                    || l.trim_start().starts_with('#'))),
                            "{name}:{}: {} has no `{mark}` line",
                            n + 1,
                            path.display()
                        );
                    }
                }
                includes += 1;
            }
            if let Some(info) = line.strip_prefix("```") {
                match fence.take() {
                    None => fence = Some((info.to_string(), Vec::new(), n + 1)),
                    Some((lang, body, start)) => {
                        let lang = lang.split(',').next().unwrap_or("").to_string();
                        if lang == "rust" || lang == "python" {
                            assert!(
                                body.len() == 1 && body[0].trim().starts_with("{{#include "),
                                "{name}:{start}: a {lang} block must hold one `{{{{#include}}}}` \
                                 of a compiled or tested file, not pasted code"
                            );
                        }
                    }
                }
            } else if let Some((_, body, _)) = fence.as_mut() {
                body.push(line.to_string());
            }
        }
        assert!(fence.is_none(), "{name}: a code block is not closed");
    }
    assert!(includes >= 20, "only {includes} includes in the book");
}

#[test]
fn relative_links_and_images_resolve() {
    let mut checked = 0;
    let summary = root().join("docs/SUMMARY.md");
    for page in pages().into_iter().chain([summary]) {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            for target in link_targets(line) {
                if target.contains("://")
                    || target.starts_with('#')
                    || target.starts_with("mailto:")
                {
                    continue;
                }
                let file = target.split('#').next().unwrap();
                let path = page.parent().unwrap().join(file);
                assert!(
                    Path::new(&path).exists(),
                    "{}:{}: links to {target}, which does not exist",
                    page.display(),
                    n + 1
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} links checked");
}
