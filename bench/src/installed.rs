//! Whether the PostgreSQL under test loads the release build: a debug .so
//! runs the local work several times slower, and its figures mean nothing.

use std::path::PathBuf;
use std::process::Command;

/// Prints a warning when the installed zoho_fdw.so is not this tree's
/// release build (a debug one, or one older than the last release build).
pub fn warn_unless_release() {
    let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
    let Some(libdir) = Command::new(&pg_config).arg("--pkglibdir").output().ok().filter(|o| o.status.success()) else {
        println!("note: cannot run {pg_config} to check which zoho_fdw.so is installed");
        return;
    };
    let installed = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim()).join("zoho_fdw.so");
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libzoho_fdw.so");
    // Sizes first: a debug build is ten times larger, and not read at all.
    let len = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
    let same = len(&installed).is_some() && len(&installed) == len(&release)
        && matches!((std::fs::read(&installed), std::fs::read(&release)), (Ok(a), Ok(b)) if a == b);
    if !same {
        println!(
            "WARNING: {} is not this tree's release build ({}); local figures below measure another build \
             (stop the cluster, then cargo pgrx install --release --package zoho_fdw)",
            installed.display(),
            release.display()
        );
    }
}
