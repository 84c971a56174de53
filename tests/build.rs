//! Compiles the PostgreSQL variant of every test only when `TEST_POSTGRES_URL` is
//! set. A requested PostgreSQL that cannot be reached then fails those tests; an
//! unrequested one produces no tests at all rather than tests that pass by skipping.
//! That it was not requested is said once, by the name of a test in the list
//! (`tests::postgres_tests_were_not_requested`), not as a build warning: a
//! newcomer's first `cargo test` should not show warnings.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres)");
    println!("cargo::rerun-if-env-changed=TEST_POSTGRES_URL");
    if std::env::var("TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=postgres");
    }
}
