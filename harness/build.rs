//! Records the compiler that builds perfkit (`rustc -V`), so results files
//! say which compiler's code their instruction counts belong to.
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PERFKIT_RUSTC={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
