//! Commands on one store: init, key, append, cat, info, list, and usage errors.

use std::process::Command;

use crate::common::{
    BIN, Env, SPEC_PRIMARY_KEY, SPEC_TEST_KEY, failure, noise, str_field, u64_field,
};

#[test]
fn init_is_idempotent_and_keeps_the_primary_key() {
    let env = Env::new();
    let first = env.json(&["init"]);
    assert_eq!(first["created"], true);
    let key_file = env.store().join("primary-key");
    let key = std::fs::read(&key_file).expect("primary-key written");
    assert_eq!(key.len(), 32);

    let again = env.json(&["init"]);
    assert_eq!(again["created"], false);
    assert_eq!(std::fs::read(&key_file).expect("primary-key"), key);

    // A different primary key for an existing store is refused, and nothing changes.
    let args = ["init", "--primary-key", SPEC_PRIMARY_KEY];
    let stderr = failure(&args, &env.run(&args), 1);
    assert!(stderr.contains("different primary key"), "{stderr}");
    assert_eq!(std::fs::read(&key_file).expect("primary-key"), key);
}

#[test]
fn key_matches_the_spec_vector() {
    let env = Env::new();
    env.ok(&["init", "--primary-key", SPEC_PRIMARY_KEY]);
    // The same key again is fine.
    env.ok(&["init", "--primary-key", SPEC_PRIMARY_KEY]);
    let text = env.ok(&["key", "--name", "test"]);
    assert_eq!(
        String::from_utf8(text).expect("UTF-8"),
        format!("{SPEC_TEST_KEY}\n")
    );
    let json = env.json(&["key", "--name", "test"]);
    assert_eq!(str_field(&json, "key"), SPEC_TEST_KEY);

    let namespaced = env.json(&["key", "--name", "test", "--namespace", "app"]);
    let chained = env.json(&[
        "key",
        "--name",
        "test",
        "--namespace",
        "app",
        "--namespace",
        "b",
    ]);
    assert_ne!(str_field(&namespaced, "key"), SPEC_TEST_KEY);
    assert_ne!(str_field(&namespaced, "key"), str_field(&chained, "key"));

    // The core created by `append --name test` has that key.
    let out = env.json_stdin(&["append", "--name", "test"], b"x\n");
    assert_eq!(str_field(&out, "key"), SPEC_TEST_KEY);
}

#[test]
fn commands_need_a_store_and_read_corestore_dir() {
    let env = Env::new();
    let stderr = failure(&["list"], &env.run(&["list"]), 1);
    assert!(stderr.contains("corestore init"), "{stderr}");

    // Without --store, $CORESTORE_DIR names the store.
    let dir = env.dir().join("from-env");
    let status = Command::new(BIN)
        .arg("init")
        .env("CORESTORE_DIR", &dir)
        .current_dir(env.dir())
        .output()
        .expect("run corestore");
    assert!(status.status.success());
    assert!(dir.join("primary-key").is_file());
    // And without either, ./corestore-data.
    let status = Command::new(BIN)
        .arg("init")
        .env_remove("CORESTORE_DIR")
        .current_dir(env.dir())
        .output()
        .expect("run corestore");
    assert!(status.status.success());
    assert!(env.dir().join("corestore-data/primary-key").is_file());
}

#[test]
fn append_lines_from_stdin_and_cat_round_trip() {
    let env = Env::init();
    let input = b"first line\nsecond\n\nno newline at the end";
    let out = env.json_stdin(&["append", "--name", "lines"], input);
    assert_eq!(u64_field(&out, "length"), 4);
    assert_eq!(u64_field(&out, "appended"), 4);
    let key = str_field(&out, "key").to_owned();

    assert_eq!(env.ok(&["cat", "--name", "lines"]), input);
    assert_eq!(env.ok(&["cat", &key]), input);
    assert_eq!(
        env.ok(&["cat", &key, "--start", "1", "--end", "3"]),
        b"second\n\n"
    );

    let json = env.json(&["cat", &key, "--start", "1"]);
    let blocks: Vec<&str> = json["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| b.as_str().expect("hex"))
        .collect();
    assert_eq!(
        blocks,
        [hex(b"second\n"), hex(b"\n"), hex(b"no newline at the end")]
    );

    // Appending again, by key, continues the core.
    let more = env.json_stdin(&["append", &key], b"more\n");
    assert_eq!(u64_field(&more, "length"), 5);
    let all = env.ok(&["cat", &key]);
    assert_eq!(all, [&input[..], b"more\n"].concat());

    // Out-of-range reads fail clearly.
    let args = ["cat", key.as_str(), "--end", "9"];
    let stderr = failure(&args, &env.run(&args), 1);
    assert!(stderr.contains("not within"), "{stderr}");
}

#[test]
fn append_blocks_of_a_size_from_a_file_and_stdin() {
    let env = Env::init();
    let data = noise(10_000, 1);
    let file = env.dir().join("data.bin");
    std::fs::write(&file, &data).expect("write input");
    let file = file.to_str().expect("UTF-8 path");

    let out = env.json(&["append", "--name", "blob", "--block-size", "4096", file]);
    assert_eq!(u64_field(&out, "length"), 3);
    assert_eq!(u64_field(&out, "byte_length"), 10_000);
    let key = str_field(&out, "key").to_owned();
    assert_eq!(env.ok(&["cat", &key]), data);
    assert_eq!(env.ok(&["cat", &key, "--start", "2"]), &data[8192..]);

    // By key, from a file, then from stdin with `-`.
    let out = env.json(&["append", &key, "--block-size", "1000", file]);
    assert_eq!(u64_field(&out, "length"), 13);
    let tail = noise(2500, 2);
    let out = env.json_stdin(&["append", &key, "-", "--block-size", "1000"], &tail);
    assert_eq!(u64_field(&out, "length"), 16);
    assert_eq!(env.ok(&["cat", &key]), [&data[..], &data, &tail].concat());
    let info = env.json(&["info", &key]);
    assert_eq!(u64_field(&info, "byte_length"), 22_500);
}

#[test]
fn info_and_list_report_every_core_as_json() {
    let env = Env::new();
    env.ok(&["init", "--primary-key", SPEC_PRIMARY_KEY]);
    env.ok_stdin(&["append", "--name", "test"], b"a\nb\nc\n");
    let ns = env.json_stdin(&["append", "--name", "other", "--namespace", "app"], b"x");
    let other = str_field(&ns, "key").to_owned();

    let info = env.json(&["info", "--name", "test"]);
    assert_eq!(str_field(&info, "key"), SPEC_TEST_KEY);
    assert_eq!(str_field(&info, "discovery_key").len(), 64);
    assert_eq!(u64_field(&info, "length"), 3);
    assert_eq!(u64_field(&info, "contiguous_length"), 3);
    assert_eq!(u64_field(&info, "byte_length"), 6);
    assert_eq!(u64_field(&info, "fork"), 0);
    assert_eq!(info["writable"], true);
    assert_eq!(env.json(&["info", SPEC_TEST_KEY]), info);
    let by_ns = env.json(&["info", "--name", "other", "--namespace", "app"]);
    assert_eq!(str_field(&by_ns, "key"), other);

    let text = String::from_utf8(env.ok(&["info", "--name", "test"])).expect("UTF-8");
    assert!(text.contains("contiguous length: 3"), "{text}");

    let list = env.json(&["list"]);
    let cores = list["cores"].as_array().expect("cores");
    assert_eq!(cores.len(), 2);
    let mut seen: Vec<(String, u64)> = cores
        .iter()
        .map(|c| (str_field(c, "key").to_owned(), u64_field(c, "length")))
        .collect();
    seen.sort();
    let mut want = vec![(SPEC_TEST_KEY.to_owned(), 3), (other, 1)];
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn missing_cores_and_bad_arguments() {
    let env = Env::init();
    // A core that is not stored: exit 1 with a message.
    let args = ["info", SPEC_TEST_KEY];
    let stderr = failure(&args, &env.run(&args), 1);
    assert!(stderr.contains(SPEC_TEST_KEY), "{stderr}");
    let args = ["cat", "--name", "nothing"];
    let stderr = failure(&args, &env.run(&args), 1);
    assert!(stderr.contains("nothing"), "{stderr}");

    // Usage errors: exit 2.
    for args in [
        &["cat"][..],
        &["cat", "not-a-key"],
        &["append"],
        &["append", "not-a-key"],
        &["append", "--name", "a", "f1", "f2"],
        &["init", "--primary-key", "abcd"],
        &[
            "fetch",
            "--connect",
            "127.0.0.1:1",
            SPEC_TEST_KEY,
            "--timeout",
            "0",
        ],
        &["frobnicate"],
    ] {
        failure(args, &env.run(args), 2);
    }
    // Nothing was created by the failed commands.
    let out = env.json(&["list"]);
    assert_eq!(out["cores"].as_array().map(Vec::len), Some(0));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
