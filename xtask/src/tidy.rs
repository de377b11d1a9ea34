//! Tidy checks: tests that read the code base itself.
//!
//! They run inside `cargo test` (the `#[test] fn tidy` at the bottom) and as `cargo xtask tidy`.
//! Each check returns a list of human-readable problems; an empty list means the tree is tidy.
//!
//! - **Layering**: every workspace-internal dependency edge (from `cargo metadata`) must appear in
//!   [`ALLOWED`]. Changing that table is a deliberate, reviewed change.
//! - **Manifests**: internal normal dependencies carry a `version`; every member opts into the
//!   workspace lints; crates confined to certain layers (tokio) or to dev-dependencies (anyhow,
//!   tracing-subscriber) stay there; prost is not used at all.
//! - **Sources**: every `.rs` file starts with `//!` docs, library crates have `src/error.rs`, no
//!   `todo!`/`unimplemented!` in library code, no `#[should_panic]`, no file over
//!   [`MAX_FILE_LINES`] lines, and the sans-IO protocol crate never reads a clock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// For each workspace member, the workspace crates it may depend on (normal, build or dev).
///
/// Layers, bottom-up: `rac-storage`, `corestore-keys` → `hypercore-lite` → `corestore-proto` →
/// `corestore` → the command-line crate. `corestore-proto` deliberately does not see storage.
pub(crate) const ALLOWED: &[(&str, &[&str])] = &[
    ("rac-storage", &[]),
    ("corestore-keys", &[]),
    ("hypercore-lite", &["rac-storage", "corestore-keys"]),
    ("corestore-proto", &["corestore-keys"]),
    (
        "corestore",
        &[
            "rac-storage",
            "corestore-keys",
            "hypercore-lite",
            "corestore-proto",
        ],
    ),
    (
        "corestore-cli",
        &[
            "corestore",
            "rac-storage",
            "corestore-keys",
            "hypercore-lite",
            "corestore-proto",
        ],
    ),
    (
        "corestore-interop",
        &[
            "corestore",
            "rac-storage",
            "corestore-keys",
            "hypercore-lite",
            "corestore-proto",
        ],
    ),
    (
        "corestore-bench",
        &[
            "corestore",
            "rac-storage",
            "corestore-keys",
            "hypercore-lite",
            "corestore-proto",
        ],
    ),
    ("xtask", &[]),
];

/// Third-party crates that only these workspace members may depend on (any kind of dependency).
const CONFINED: &[(&str, &[&str])] = &[(
    "tokio",
    &[
        "corestore",
        "corestore-cli",
        "corestore-interop",
        "corestore-bench",
    ],
)];

/// Third-party crates that library crates may use only as dev-dependencies.
const DEV_ONLY_IN_LIBRARIES: &[&str] = &["anyhow", "tracing-subscriber"];

/// Crates that have no place in this workspace at all.
const BANNED: &[(&str, &str)] = &[(
    "prost",
    "the wire and disk formats are compact-encoding, not protobuf",
)];

/// The longest a source file may be unless listed in `xtask/src/allow_long_files.txt`.
pub(crate) const MAX_FILE_LINES: usize = 1500;

/// One dependency edge as `cargo metadata` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dep {
    pub(crate) name: String,
    /// `None` for a normal dependency, else `dev` or `build`.
    pub(crate) kind: Option<String>,
    pub(crate) req: String,
    pub(crate) is_path: bool,
}

/// One workspace member as `cargo metadata` reports it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) manifest: PathBuf,
    pub(crate) is_library: bool,
    pub(crate) deps: Vec<Dep>,
}

/// Runs every check against the tree at `root`.
pub(crate) fn run_all(root: &Path) -> Result<Vec<String>> {
    let members = workspace_members(root)?;
    let mut problems = check_layering(&members);
    problems.extend(check_manifests(&members)?);
    problems.extend(check_sources(root, &members)?);
    Ok(problems)
}

/// Fails with every problem listed, or prints a one-line success.
pub(crate) fn report(problems: &[String]) -> Result<()> {
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    bail!(
        "tidy found {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

/// Reads the workspace members and their declared dependencies from `cargo metadata`.
fn workspace_members(root: &Path) -> Result<Vec<Member>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    parse_members(&meta)
}

fn parse_members(meta: &Value) -> Result<Vec<Member>> {
    let packages = meta["packages"]
        .as_array()
        .context("metadata without packages")?;
    let mut members = Vec::new();
    for p in packages {
        let name = p["name"]
            .as_str()
            .context("package without name")?
            .to_owned();
        let manifest = PathBuf::from(p["manifest_path"].as_str().context("no manifest_path")?);
        let is_library = p["targets"].as_array().is_some_and(|targets| {
            targets.iter().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
        });
        let deps = p["dependencies"]
            .as_array()
            .context("package without dependencies")?
            .iter()
            .map(|d| Dep {
                name: d["name"].as_str().unwrap_or_default().to_owned(),
                kind: d["kind"].as_str().map(str::to_owned),
                req: d["req"].as_str().unwrap_or("*").to_owned(),
                is_path: d["path"].is_string(),
            })
            .collect();
        members.push(Member {
            name,
            manifest,
            is_library,
            deps,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// Every workspace-internal edge must be allowed by [`ALLOWED`].
pub(crate) fn check_layering(members: &[Member]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let internal: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let mut problems = Vec::new();
    for m in members {
        let Some(may) = allowed.get(m.name.as_str()) else {
            problems.push(format!(
                "workspace member `{}` has no row in xtask/src/tidy.rs ALLOWED: add it with its layer",
                m.name
            ));
            continue;
        };
        // A crate may name itself as a dev-dependency to turn on its own test features.
        for d in m
            .deps
            .iter()
            .filter(|d| d.name != m.name && internal.contains(&d.name.as_str()))
        {
            if !may.contains(&d.name.as_str()) {
                let kind = d.kind.as_deref().unwrap_or("normal");
                problems.push(format!(
                    "forbidden dependency edge `{}` -> `{}` ({kind}): a crate may depend only on lower layers (see docs/ARCHITECTURE.md)",
                    m.name, d.name
                ));
            }
        }
    }
    problems
}

/// Manifest rules that `cargo metadata` and the manifest text can tell.
fn check_manifests(members: &[Member]) -> Result<Vec<String>> {
    let internal: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let mut problems = check_dependency_rules(members, &internal);
    for m in members {
        let text = fs::read_to_string(&m.manifest)
            .with_context(|| format!("reading {}", m.manifest.display()))?;
        if !has_workspace_lints(&text) {
            problems.push(format!(
                "{}: missing `[lints] workspace = true`",
                m.manifest.display()
            ));
        }
    }
    Ok(problems)
}

/// Dependency rules that need only the dependency lists.
pub(crate) fn check_dependency_rules(members: &[Member], internal: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for m in members {
        for d in &m.deps {
            let is_dev = d.kind.as_deref() == Some("dev");
            if internal.contains(&d.name.as_str()) && d.kind.is_none() && d.req == "*" {
                problems.push(format!(
                    "`{}` depends on internal crate `{}` without a version (needed to publish)",
                    m.name, d.name
                ));
            }
            for (dep, who) in CONFINED {
                if d.name == *dep && !who.contains(&m.name.as_str()) {
                    problems.push(format!(
                        "`{}` depends on `{dep}`, which only {} may use",
                        m.name,
                        who.join(", ")
                    ));
                }
            }
            let is_published_lib =
                m.is_library && !["corestore-interop", "xtask"].contains(&m.name.as_str());
            if is_published_lib && !is_dev && DEV_ONLY_IN_LIBRARIES.contains(&d.name.as_str()) {
                problems.push(format!(
                    "library `{}` depends on `{}` outside [dev-dependencies]",
                    m.name, d.name
                ));
            }
            for (banned, why) in BANNED {
                if d.name == *banned {
                    problems.push(format!("`{}` depends on `{banned}`: {why}", m.name));
                }
            }
        }
    }
    problems
}

/// True when the manifest text opts into the workspace lints.
fn has_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return true;
        }
    }
    manifest
        .lines()
        .any(|l| l.replace(' ', "") == "lints.workspace=true")
}

/// Source rules over every member's `.rs` files.
fn check_sources(root: &Path, members: &[Member]) -> Result<Vec<String>> {
    let allow_long =
        fs::read_to_string(root.join("xtask/src/allow_long_files.txt")).unwrap_or_default();
    let allow_long: Vec<&str> = allow_long
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut problems = Vec::new();
    for m in members {
        let dir = m
            .manifest
            .parent()
            .context("manifest without a directory")?;
        let is_library_crate = m.is_library && dir.starts_with(root.join("crates"));
        if is_library_crate {
            if !dir.join("src/error.rs").is_file() {
                problems.push(format!("library `{}` has no src/error.rs", m.name));
            }
            if !dir.join("src/lib.rs").is_file() {
                problems.push(format!("library `{}` has no src/lib.rs", m.name));
            }
        }
        let mut files = Vec::new();
        rust_files(dir, &mut files)?;
        for file in files {
            let text =
                fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let rel = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            let in_src = rel.contains("/src/");
            problems.extend(check_source_text(
                &rel,
                &text,
                SourceKind {
                    library_src: is_library_crate && in_src,
                    sans_io: m.name == "corestore-proto" && in_src,
                    long_allowed: allow_long.contains(&rel.as_str()),
                },
            ));
        }
    }
    Ok(problems)
}

/// What rules apply to one source file.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceKind {
    /// Under `src/` of a library crate in `crates/`.
    pub(crate) library_src: bool,
    /// Under `src/` of the sans-IO protocol crate.
    pub(crate) sans_io: bool,
    /// Listed in `allow_long_files.txt`.
    pub(crate) long_allowed: bool,
}

/// The per-file source rules, separated from the file system so they can be tested.
pub(crate) fn check_source_text(rel: &str, text: &str, kind: SourceKind) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("#!["));
    if !first.is_some_and(|l| l.starts_with("//!")) {
        problems.push(format!("{rel}: does not start with `//!` module docs"));
    }
    let lines = text.lines().count();
    if lines > MAX_FILE_LINES && !kind.long_allowed {
        problems.push(format!(
            "{rel}: {lines} lines, over {MAX_FILE_LINES}; split it (or list it in xtask/src/allow_long_files.txt with a reason)"
        ));
    }
    // Built from pieces so this file does not trip its own check when tidy scans more folders.
    let stubs = [concat!("todo", "!("), concat!("unimplemented", "!(")];
    let should_panic = concat!("#[should", "_panic");
    let clocks = [concat!("Instant", "::now"), concat!("SystemTime", "::now")];
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let at = format!("{rel}:{}", n + 1);
        if kind.library_src && stubs.iter().any(|s| code.contains(s)) {
            problems.push(format!("{at}: stub macro in library code"));
        }
        if code.contains(should_panic) {
            problems.push(format!(
                "{at}: `should_panic` test; assert on an `Err` instead"
            ));
        }
        if kind.sans_io && clocks.iter().any(|c| code.contains(c)) {
            problems.push(format!(
                "{at}: the sans-IO protocol crate reads a clock; take `now` as an argument"
            ));
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | "node_modules" | "corpus" | "artifacts"
            ) && !name.starts_with('.')
            {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, deps: &[(&str, Option<&str>, &str)]) -> Member {
        Member {
            name: name.to_owned(),
            manifest: PathBuf::from(format!("crates/{name}/Cargo.toml")),
            is_library: true,
            deps: deps
                .iter()
                .map(|(n, kind, req)| Dep {
                    name: (*n).to_owned(),
                    kind: kind.map(str::to_owned),
                    req: (*req).to_owned(),
                    is_path: true,
                })
                .collect(),
        }
    }

    /// The real tree passes every check.
    #[test]
    fn tidy() {
        let problems = run_all(&crate::project_root()).expect("tidy checks ran");
        assert!(
            problems.is_empty(),
            "tidy problems:\n  - {}",
            problems.join("\n  - ")
        );
    }

    #[test]
    fn upward_edge_is_named() {
        let members = [
            member("rac-storage", &[("hypercore-lite", None, "^0.1.0")]),
            member("hypercore-lite", &[("rac-storage", None, "^0.1.0")]),
        ];
        let problems = check_layering(&members);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`rac-storage` -> `hypercore-lite`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn proto_may_not_see_storage_even_as_dev_dependency() {
        let members = [
            member("corestore-proto", &[("rac-storage", Some("dev"), "*")]),
            member("rac-storage", &[]),
        ];
        let problems = check_layering(&members);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`corestore-proto` -> `rac-storage` (dev)"));
    }

    #[test]
    fn self_dev_dependency_is_allowed() {
        let members = [member("rac-storage", &[("rac-storage", Some("dev"), "*")])];
        assert!(check_layering(&members).is_empty());
    }

    #[test]
    fn unknown_member_needs_a_row() {
        let problems = check_layering(&[member("surprise", &[])]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`surprise`"));
    }

    #[test]
    fn allowed_edges_pass() {
        let members = [
            member(
                "hypercore-lite",
                &[
                    ("rac-storage", None, "^0.1.0"),
                    ("corestore-keys", None, "^0.1.0"),
                ],
            ),
            member("rac-storage", &[]),
            member("corestore-keys", &[]),
        ];
        assert!(check_layering(&members).is_empty());
    }

    #[test]
    fn dependency_rules() {
        let internal = ["rac-storage", "hypercore-lite"];
        let members = [member(
            "hypercore-lite",
            &[
                ("rac-storage", None, "*"),
                ("tokio", None, "^1"),
                ("anyhow", None, "^1"),
                ("anyhow", Some("dev"), "^1"),
                ("prost", None, "^0.13"),
            ],
        )];
        let problems = check_dependency_rules(&members, &internal);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("without a version"));
        assert!(problems[1].contains("`tokio`"));
        assert!(problems[2].contains("`anyhow` outside"));
        assert!(problems[3].contains("prost"));
    }

    #[test]
    fn workspace_lints_detection() {
        assert!(has_workspace_lints(
            "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n"
        ));
        assert!(has_workspace_lints("lints.workspace = true\n"));
        assert!(!has_workspace_lints("[package]\nworkspace = true\n"));
    }

    #[test]
    fn source_rules() {
        let lib = SourceKind {
            library_src: true,
            sans_io: true,
            long_allowed: false,
        };
        let stub = concat!("fn f() { todo", "!() }");
        let clock = concat!("let t = std::time::Instant", "::now();");
        let text = format!("//! Docs.\n{stub}\n{clock}\n// todo later is fine in a comment\n");
        let problems = check_source_text("crates/x/src/a.rs", &text, lib);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].ends_with("a.rs:2: stub macro in library code"));
        assert!(problems[1].contains("reads a clock"));

        let undocumented =
            check_source_text("crates/x/src/b.rs", "fn f() {}\n", SourceKind::default());
        assert_eq!(undocumented.len(), 1);
        assert!(undocumented[0].contains("`//!`"));

        let long = format!("//! Docs.\n{}", "x();\n".repeat(MAX_FILE_LINES + 1));
        assert_eq!(
            check_source_text("a.rs", &long, SourceKind::default()).len(),
            1
        );
        let allowed = SourceKind {
            long_allowed: true,
            ..SourceKind::default()
        };
        assert!(check_source_text("a.rs", &long, allowed).is_empty());
    }
}
