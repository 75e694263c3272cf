//! The documents a new user reads hold only links that work in a fresh clone: every
//! Markdown link points at a file of the repository, none outside it or on the web; the
//! README stays a guide read in minutes, and links every reference page in `docs/`.

use std::path::{Component, Path, PathBuf};

/// The README stays a guide: the reference lives in `docs/`.
const README_MAX_LINES: usize = 400;

/// Every document: the README, ARCHITECTURE.md and each page of `docs/`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    out.extend(pages);
    out
}

/// The targets of the inline Markdown links `[text](target)` in `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[test]
fn documents_link_only_to_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in documents(root) {
        let doc = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert!(
            !text.contains("../shared/"),
            "{doc} mentions ../shared/, which a clone does not have"
        );
        for link in links(&text) {
            let target = link.split('#').next().unwrap();
            if target.is_empty() {
                continue; // an anchor in the same document
            }
            assert!(
                !target.contains("://") && !target.starts_with("mailto:"),
                "{doc} links outside the repository: {link}"
            );
            let resolved = path.parent().unwrap().join(target);
            let inside = resolved
                .strip_prefix(root)
                .map(|p| !p.components().any(|c| c == Component::ParentDir))
                .unwrap_or(false)
                && resolved
                    .canonicalize()
                    .is_ok_and(|c| c.starts_with(root.canonicalize().unwrap()));
            assert!(
                inside,
                "{doc} links to {link}, not a file of the repository"
            );
        }
    }
    // The README points at the design document the project carries.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(links(&readme).iter().any(|l| l == "docs/DESIGN.md"));
}

#[test]
fn the_readme_is_a_short_guide_that_links_every_reference_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it a guide of at most {README_MAX_LINES} and move \
         reference into docs/"
    );
    let linked = links(&readme);
    for page in documents(root).iter().skip(2) {
        let rel = page.strip_prefix(root).unwrap().display().to_string();
        assert!(
            linked
                .iter()
                .any(|l| l.split('#').next() == Some(rel.as_str())),
            "README.md does not link {rel}"
        );
    }
}

#[test]
fn the_link_reader_finds_inline_links() {
    assert_eq!(
        links("see [a](docs/A.md) and [b](#x), [c](https://e.org)"),
        ["docs/A.md", "#x", "https://e.org"]
    );
}
