//! The tutorial quotes its programs: every code block in `docs/*.md` whose
//! fence names a file (```` ```rust file=examples/src/bin/x.rs ````) must be
//! identical to that file, and every program in `src/bin/` must be quoted.
use std::{collections::BTreeSet, fs, path::Path};

/// `(file named by the fence, the block's text)` for every marked block.
fn quotes(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("```rust file=") else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        out.push((file.trim().to_string(), body));
    }
    out
}

#[test]
fn quoted_code_is_identical_to_the_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut quoted = BTreeSet::new();
    for entry in fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for (file, body) in quotes(&fs::read_to_string(&path).unwrap()) {
            let actual = fs::read_to_string(root.join(&file))
                .unwrap_or_else(|e| panic!("{}: {file}: {e}", path.display()));
            assert_eq!(
                body,
                actual,
                "{} quotes {file}, which differs",
                path.display()
            );
            quoted.insert(file);
        }
    }
    for entry in fs::read_dir(root.join("examples/src/bin")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let file = format!("examples/src/bin/{name}");
        assert!(quoted.contains(&file), "{file} is not quoted in docs/");
    }
    assert!(
        quoted.contains("examples/tests/manual_clock.rs"),
        "the testing chapter must quote its test"
    );
}

#[test]
fn a_block_is_read_to_its_closing_fence() {
    let md = "text\n```rust file=a.rs\nfn main() {}\n```\n```rust\nnot marked\n```\n";
    assert_eq!(
        quotes(md),
        vec![("a.rs".to_string(), "fn main() {}\n".to_string())]
    );
}
