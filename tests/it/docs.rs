//! The documents a new user reads hold only links that work in a fresh clone: every
//! Markdown link points at a file of the repository, none outside it or on the web.

use std::path::{Component, Path};

const DOCS: [&str; 4] = [
    "README.md",
    "ARCHITECTURE.md",
    "docs/DESIGN.md",
    "docs/delta.md",
];

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
    for doc in DOCS {
        let path = root.join(doc);
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
fn the_link_reader_finds_inline_links() {
    assert_eq!(
        links("see [a](docs/A.md) and [b](#x), [c](https://e.org)"),
        ["docs/A.md", "#x", "https://e.org"]
    );
}
