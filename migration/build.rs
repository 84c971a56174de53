//! The CLI's PostgreSQL tests exist only when `TEST_POSTGRES_URL` is set (as in the
//! black-box suite's build script): a requested server that cannot be reached fails
//! them, and an unrequested one produces no tests rather than tests that skip.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres)");
    println!("cargo::rerun-if-env-changed=TEST_POSTGRES_URL");
    if std::env::var("TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=postgres");
    }
}
