//! SQL golden tests: each `sql/NAME.sql` runs through psql against a fresh
//! database with a simulator, and its output must equal `expected/NAME.out`.
//! On a difference the actual output is written to `results/NAME.out`.
//! `ZOHO_FDW_BLESS=1` rewrites the expected files instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use zoho_fdw_tests::*;

fn psql() -> String {
    std::env::var("PSQL").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin/psql".into())
}

/// A first line `-- sim: Leads=300 Orders=30` seeds the simulator.
fn sim_config(script: &str) -> SimConfig {
    let mut cfg = SimConfig::default();
    if let Some(spec) = script.lines().next().and_then(|l| l.strip_prefix("-- sim:")) {
        for item in spec.split_whitespace() {
            let (module, n) = item.split_once('=').expect("Module=N");
            cfg = cfg.seed(module, n.parse().expect("a count"));
        }
    }
    cfg
}

fn run(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("sql").join(format!("{name}.sql"));
    let sim = start_sim(sim_config(&std::fs::read_to_string(&script).expect("script readable")));
    let db = TestDb::new(name);
    // Through sh so that errors interleave with the statements that raised them.
    let out = Command::new("sh")
        .args(["-c", "exec \"$0\" \"$@\" 2>&1", &psql()])
        .arg(&db.dsn)
        .args(["-X", "-a", "-q", "--no-psqlrc", "-v", "VERBOSITY=default", "-v", "SHOW_CONTEXT=never"])
        .args(["-v", &format!("sim_url={}", sim.base_url())])
        .arg("-f")
        .arg(root.join("sql").join(format!("{name}.sql")))
        .env("PGOPTIONS", "-c client_min_messages=notice")
        .output()
        .expect("psql runs");
    let mut actual = String::from_utf8_lossy(&out.stdout).into_owned();
    // psql prefixes errors with the script's path; keep only the file name.
    actual = actual.replace(&format!("{}:", script.display()), &format!("{name}.sql:"));
    let expected_path: PathBuf = root.join("expected").join(format!("{name}.out"));
    if std::env::var("ZOHO_FDW_BLESS").is_ok() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != actual {
        let results = root.join("results");
        std::fs::create_dir_all(&results).unwrap();
        let got = results.join(format!("{name}.out"));
        std::fs::write(&got, &actual).unwrap();
        let diff = Command::new("diff").arg("-u").arg(&expected_path).arg(&got).output().unwrap();
        panic!("{name}: output differs from {}:\n{}", expected_path.display(), String::from_utf8_lossy(&diff.stdout));
    }
}

#[test]
fn options() {
    run("options");
}

#[test]
fn ping() {
    run("ping");
}

#[test]
fn import() {
    run("import");
}

#[test]
fn scan() {
    run("scan");
}

#[test]
fn modify() {
    run("modify");
}

#[test]
fn push() {
    run("push");
}

#[test]
fn export() {
    run("export");
}

#[test]
fn pushdown() {
    run("pushdown");
}
