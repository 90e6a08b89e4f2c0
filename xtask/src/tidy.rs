//! Tidy checks, run as tests: the architecture invariants of docs/design.md, "Shape", and the module-doc rule
//! (for `crates/*/src`, xtask and the bench).

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace;

/// Crates the pure `domain` must not reach, directly or transitively.
const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "adapter-postgres",
    "adapter-crypto",
    "adapter-http",
    "adapter-providers",
    "app",
    "tokio",
    "actix-web",
    "actix-rt",
    "tokio-postgres",
    "postgres",
    "deadpool",
    "deadpool-postgres",
    "ring",
    "moka",
    "governor",
    "reqwest",
    "redis",
];

/// Paths that only the named crates' sources may mention.
const CONFINED_PATHS: &[(&str, &[&str])] = &[
    ("tokio_postgres", &["adapter-postgres"]),
    ("deadpool", &["adapter-postgres"]),
    ("ring::", &["adapter-crypto"]),
    ("rustls", &["adapter-postgres"]),
    ("actix_web", &["adapter-http"]),
    ("reqwest", &["adapter-providers"]),
    ("oauth2", &["adapter-providers"]),
    ("governor", &["app"]),
    ("moka", &["app"]),
    ("redis::", &["adapter-redis"]),
];

#[test]
fn domain_depends_on_no_adapter_runtime_or_driver() {
    let output = workspace::cargo()
        .unwrap()
        .args(["tree", "-p", "domain", "-e", "normal", "--prefix", "none"])
        .args(["--no-dedupe", "--all-features", "--target", "all"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed:\n{stderr}");

    let tree = String::from_utf8_lossy(&output.stdout);
    let mut offenders: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| FORBIDDEN_IN_DOMAIN.contains(name))
        .collect();
    offenders.sort_unstable();
    offenders.dedup();
    assert!(
        offenders.is_empty(),
        "domain must stay pure, but depends on {offenders:?} \
         (`cargo tree -p domain -e normal -i <crate>` shows the path)"
    );
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let mut files: Vec<PathBuf> = crate_sources().into_iter().map(|(_, file)| file).collect();
    assert!(!files.is_empty(), "found no sources under crates/*/src");
    for tool in ["xtask/src", "bench/src"] {
        collect_rust_files(&workspace::root().unwrap().join(tool), &mut files);
    }
    let undocumented: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = fs::read_to_string(file).unwrap();
            let first = text.lines().find(|line| !line.trim().is_empty());
            !first.is_some_and(|line| line.starts_with("//!"))
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files must start with a `//!` line saying what the module is for:\n{}",
        undocumented.join("\n")
    );
}

/// A type in the HTTP adapter that nothing constructs can only be there for the OpenAPI
/// document, and such a shadow of a wire shape drifts from the type that renders the bytes.
#[test]
fn the_http_adapter_keeps_no_unconstructed_type() {
    let offenders: Vec<String> = crate_sources()
        .into_iter()
        .filter(|(name, file)| {
            name == "adapter-http"
                && fs::read_to_string(file)
                    .unwrap()
                    .contains("allow(dead_code)")
        })
        .map(|(_, file)| file.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "derive the schema from the type the handler serializes instead of allowing dead code in:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn technology_crates_are_named_only_in_their_adapters() {
    let files = crate_sources();
    assert!(!files.is_empty(), "found no sources under crates/*/src");
    let mut violations = Vec::new();
    for (krate, file) in &files {
        let text = fs::read_to_string(file).unwrap();
        // Comments may name a technology; code may not use it.
        let code = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim_start().starts_with("//"));
        for (number, line) in code {
            for (path, allowed) in CONFINED_PATHS {
                if mentions(line, path) && !allowed.contains(&krate.as_str()) {
                    violations.push(format!(
                        "{}:{}: `{path}` belongs only in {allowed:?}",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Phrases that point outside the repository: the design a clone follows must live in it
/// (`docs/design.md`). Spelled in pieces so that this file does not match itself.
const OUTSIDE_REFERENCES: &[&str] = &[
    concat!("..", "/shared"),
    concat!("DESIGN", " §"),
    concat!("DESIGN", ".md"),
    concat!("the ", "seed"),
    concat!("seed", "/USER_SETTINGS"),
];

#[test]
fn no_file_points_outside_the_repository() {
    let root = workspace::root().unwrap();
    let listed = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    let mut violations = Vec::new();
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(text) = fs::read_to_string(root.join(&name)) else {
            continue; // binary, or deleted in the work tree
        };
        for (number, line) in text.lines().enumerate() {
            if let Some(reason) = outside_reference(line) {
                violations.push(format!("{name}:{}: {reason}", number + 1));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "these lines point at documents a clone does not have; say it here or in docs/:\n{}",
        violations.join("\n")
    );
}

#[test]
fn outside_references_are_recognised() {
    assert!(outside_reference(concat!("see ", "DESIGN", " §5")).is_some());
    assert!(outside_reference(concat!("as in ", "the ", "seed's table")).is_some());
    assert!(outside_reference(concat!("(", "issue", " 7)")).is_some());
    assert!(outside_reference(concat!("Issue", "s #12")).is_some());
    assert!(outside_reference("seeded 1000 users").is_none());
    assert!(outside_reference(concat!("serves ", "the ", "seeded data")).is_none());
    assert!(outside_reference("previous key #2").is_none());
    assert!(outside_reference("an issue with the 2 cores").is_none());
}

/// Why `line` points outside the repository, if it does.
fn outside_reference(line: &str) -> Option<String> {
    // A phrase counts where it ends at a word boundary (so "seeded" alone is no reference).
    let whole = |phrase: &str| {
        let ends_in_word = phrase.ends_with(char::is_alphanumeric);
        line.match_indices(phrase).any(|(start, _)| {
            !ends_in_word
                || !line[start + phrase.len()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric)
        })
    };
    if let Some(phrase) = OUTSIDE_REFERENCES.iter().find(|p| whole(p)) {
        return Some(format!("mentions `{phrase}`"));
    }
    let lower = line.to_lowercase();
    lower.match_indices("issue").find_map(|(start, word)| {
        let rest = lower[start + word.len()..].trim_start_matches('s');
        let rest = rest
            .strip_prefix(' ')
            .unwrap_or(rest)
            .trim_start_matches('#');
        let boundary = !lower[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        (boundary && rest.starts_with(|c: char| c.is_ascii_digit()))
            .then(|| "names an issue by number".to_owned())
    })
}

#[test]
fn a_mention_starts_at_an_identifier_boundary() {
    assert!(mentions("use ring::aead;", "ring::"));
    assert!(mentions(
        "let k = ::ring::rand::SystemRandom::new();",
        "ring::"
    ));
    assert!(!mentions("String::new()", "ring::"));
    assert!(!mentions("AesGcmKeyring::new()", "ring::"));
    // A module of another crate that shares the name is not the crate.
    assert!(!mentions(
        "rustls::crypto::ring::default_provider()",
        "ring::"
    ));
}

/// Whether `line` contains `path` not preceded by an identifier character (so `String::` is
/// not a mention of `ring::`) nor by another path (so `rustls::crypto::ring::` is not).
fn mentions(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(start, _)| {
        let before = &line[..start];
        let inside_identifier = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let inside_path = before.strip_suffix("::").is_some_and(|parent| {
            parent
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        !inside_identifier && !inside_path
    })
}

/// Every `.rs` file under `crates/<crate>/src`, with its crate's folder name.
fn crate_sources() -> Vec<(String, PathBuf)> {
    let crates = workspace::root().unwrap().join("crates");
    let mut files = Vec::new();
    for entry in fs::read_dir(crates).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut sources = Vec::new();
        collect_rust_files(&dir.join("src"), &mut sources);
        files.extend(sources.into_iter().map(|file| (name.clone(), file)));
    }
    files.sort();
    files
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}
