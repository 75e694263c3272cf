//! Hook files: `before = ["@setup.sql"]` (and `require`, `after`, `delta_before`,
//! `delta_after`) names a file next to the mapping instead of pasting its SQL. The file
//! is read when the mapping is (a regular file inside the mapping's directory, at most
//! [`HOOK_FILE_MAX`]) and its text takes the reference's place, so the mapping an export
//! stores holds the SQL itself, with a comment naming each file and its sha256: the
//! export stays self-contained, and the SQL is judged like any pasted hook (transaction
//! control refused, a `require` one statement).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};

use crate::hint::WithHint;
use crate::store::file::{self, Links};

/// The largest hook file read: an application's own migration SQL, not its data.
pub const HOOK_FILE_MAX: u64 = 1 << 20;

/// The hook lists a reference may stand in.
const KEYS: [&str; 5] = ["require", "before", "after", "delta_before", "delta_after"];

/// The mapping text at `map` with every `@file` hook replaced by the file's text; the
/// text unchanged when it has none.
pub fn inline(map: &Path, text: &str) -> Result<String> {
    let mut doc: toml::Table = match toml::from_str(text) {
        Ok(d) => d,
        // The mapping's own parse reports the error, with its line.
        Err(_) => return Ok(text.to_string()),
    };
    let Some(import) = doc.get_mut("import").and_then(|v| v.as_table_mut()) else {
        return Ok(text.to_string());
    };
    let dir = map
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut read = Vec::new();
    for key in KEYS {
        let Some(list) = import.get_mut(key).and_then(|v| v.as_array_mut()) else {
            continue;
        };
        for (i, item) in list.iter_mut().enumerate() {
            let Some(name) = item.as_str().and_then(|s| s.strip_prefix('@')) else {
                continue;
            };
            let here = format!("[import] {key} #{} (@{name})", i + 1);
            let sql = read_hook(dir, name)
                .with_context(|| format!("mapping file {}: {here}", map.display()))?;
            read.push(format!(
                "# [import] {key} #{}: @{name}, sha256 {}",
                i + 1,
                hex::encode(Sha256::digest(sql.as_bytes()))
            ));
            *item = toml::Value::String(sql);
        }
    }
    if read.is_empty() {
        return Ok(text.to_string());
    }
    let body = toml::to_string(&doc).context("writing the mapping with its hook files")?;
    Ok(format!(
        "# pgconverge: this mapping's hook files, read from {} and inlined:\n{}\n{body}",
        dir.display(),
        read.join("\n")
    ))
}

/// A hook file's text: a relative path inside `dir`, a regular file (no link), UTF-8, at
/// most [`HOOK_FILE_MAX`].
fn read_hook(dir: &Path, name: &str) -> Result<String> {
    let rel = Path::new(name);
    let inside = !name.is_empty()
        && rel.is_relative()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(anyhow!("`{name}` is not a path inside the mapping's directory"))
            .hint("name a file next to the mapping (or in a folder below it), e.g. before = [\"@sql/setup.sql\"]");
    }
    file::read_text(&dir.join(rel), Links::Refuse, HOOK_FILE_MAX, "hook file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_replaced_by_their_files_and_paths_stay_inside() {
        let dir = std::env::temp_dir().join(format!("pgc_hookfiles_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sql")).unwrap();
        std::fs::write(
            dir.join("sql/setup.sql"),
            "INSERT INTO role VALUES (1, 'admin');\n",
        )
        .unwrap();
        let map = dir.join("m.toml");
        let text = "[import]\nbefore = [\"@sql/setup.sql\", \"SELECT 1\"]\n";
        let out = inline(&map, text).unwrap();
        assert!(
            out.contains("# [import] before #1: @sql/setup.sql, sha256 "),
            "{out}"
        );
        let back: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            back["import"]["before"].as_array().unwrap()[0].as_str(),
            Some("INSERT INTO role VALUES (1, 'admin');\n")
        );
        // No reference: the text as it was, comments and all.
        let plain = "# mine\n[import]\nbefore = [\"SELECT 1\"]\n";
        assert_eq!(inline(&map, plain).unwrap(), plain);
        for bad in ["@../x.sql", "@/etc/passwd", "@", "@sql/../../x.sql"] {
            let t = format!("[import]\nafter = [\"{bad}\"]\n");
            let e = format!("{:#}", inline(&map, &t).unwrap_err());
            assert!(
                e.contains("not a path inside the mapping's directory"),
                "{bad}: {e}"
            );
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link.sql")).unwrap();
        let e = format!(
            "{:#}",
            inline(&map, "[import]\nafter = [\"@link.sql\"]\n").unwrap_err()
        );
        assert!(e.contains("link.sql") && !e.contains("root:"), "{e}");
        let e = format!(
            "{:#}",
            inline(&map, "[import]\nafter = [\"@missing.sql\"]\n").unwrap_err()
        );
        assert!(e.contains("[import] after #1 (@missing.sql)"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
