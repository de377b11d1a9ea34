//! `corestore demo`: the README's first command.

use crate::common::{Env, parse_json, success, u64_field};

#[test]
fn demo_replicates_and_verifies() {
    let env = Env::new();
    let args = ["demo"];
    let text = String::from_utf8(success(&args, env.run(&args))).expect("UTF-8");
    assert!(text.contains("verified: all"), "{text}");

    let args = ["--json", "demo"];
    let report = parse_json(&success(&args, env.run(&args)));
    let cores = report["cores"].as_array().expect("cores");
    assert_eq!(cores.len(), 3);
    let written: u64 = cores.iter().map(|c| u64_field(c, "blocks")).sum();
    assert!(written > 0);
    assert_eq!(u64_field(&report, "verified_blocks"), written);
    // The demo needs no store and leaves none behind.
    assert!(!env.store().exists());
}
