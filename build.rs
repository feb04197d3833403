//! Records the git revision for `hookrelay --version` (or
//! `$BUILD_GIT_REV` when building outside a checkout, e.g. in a
//! container).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_REV");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let rev = std::env::var("BUILD_GIT_REV")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        });
    println!(
        "cargo:rustc-env=BUILD_GIT_REV={}",
        rev.unwrap_or_else(|| "unknown".into())
    );
}
