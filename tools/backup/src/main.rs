//! `cargo run -p backup -- create|list|prune|restore|verify` (see docs/backup.md).

use database_url::DatabaseArg;
use std::path::PathBuf;
use std::process::ExitCode;

use backup::{BackupError, Manifest, Policy, Verified, human_size};
use chrono::Utc;
use clap::{Parser, Subcommand};

/// Logical backups of a Bookworm database, with manifests, retention and verified restores
#[derive(Parser)]
#[command(name = "backup")]
struct Cli {
    /// The database to back up, and the role that creates scratch databases for `verify`.
    #[command(flatten)]
    database: DatabaseArg,
    /// Where backups and their manifests are kept.
    #[arg(long, env = "BACKUP_DIR", default_value = "backups", global = true)]
    dir: PathBuf,
    /// Print one JSON document on standard output instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Back up DATABASE_URL into BACKUP_DIR, with a manifest beside it.
    Create,
    /// The backups in BACKUP_DIR, newest first.
    List,
    /// Delete the backups the retention policy does not keep (never the newest, never
    /// one whose manifest cannot be read).
    Prune {
        /// Newest backup of each of this many most recent days.
        #[arg(long, env = "BACKUP_KEEP_DAILY", default_value_t = 7)]
        keep_daily: usize,
        /// Newest backup of each of this many most recent ISO weeks.
        #[arg(long, env = "BACKUP_KEEP_WEEKLY", default_value_t = 4)]
        keep_weekly: usize,
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Restore a backup into an empty database, then verify it.
    Restore {
        /// The backup: a path, or its name as `list` prints it (looked up in
        /// BACKUP_DIR). Its manifest must be beside it.
        backup: PathBuf,
        /// The database to restore into.
        #[arg(long)]
        into: String,
        /// Replace the contents of a database that is not empty.
        #[arg(long)]
        force: bool,
    },
    /// Recompute every table's rows and checksum and compare them with the manifest.
    Verify {
        /// The backup: a path, or its name as `list` prints it (looked up in
        /// BACKUP_DIR). Its manifest must be beside it.
        backup: PathBuf,
        /// Check this database (one the backup was restored into) instead of restoring
        /// the backup into a scratch copy.
        #[arg(long)]
        against: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    cli.database.warn_if_stray();
    let json = cli.json;
    let mut progress = |step: &str| {
        if !json {
            eprintln!("  … {step}");
        }
    };
    let outcome = match cli.command {
        Command::Create => backup::create(&cli.database.url, &cli.dir, &mut progress)
            .await
            .map(|created| {
                let m = &created.manifest;
                report(json, m, || {
                    format!(
                        "backed up {} tables, {} rows into {} ({}) in {:.1?}; schema {}",
                        m.tables.len(),
                        m.total_rows(),
                        created.path.display(),
                        human_size(m.size_bytes),
                        created.took,
                        m.schema_version.as_deref().unwrap_or("unknown"),
                    )
                });
                true
            }),
        Command::List => backup::list(&cli.dir).map(|found| {
            if json {
                let items: Vec<_> = found
                    .iter()
                    .map(|l| match &l.manifest {
                        Ok(m) => serde_json::to_value(m).expect("serializes"),
                        Err(reason) => serde_json::json!({"manifest": l.manifest_path, "unreadable": reason}),
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                println!("{:<8} {:>10} {:<52} file", "age", "size", "schema");
                for l in &found {
                    match &l.manifest {
                        Ok(m) => println!(
                            "{:<8} {:>10} {:<52} {}",
                            age(m),
                            human_size(m.size_bytes),
                            m.schema_version.as_deref().unwrap_or("unknown"),
                            m.file
                        ),
                        Err(reason) => println!("{:<8} {:>10} {:<52} {reason}", "?", "?", "unreadable"),
                    }
                }
                println!("{} backups in {}", found.len(), cli.dir.display());
            }
            true
        }),
        Command::Prune {
            keep_daily,
            keep_weekly,
            dry_run,
        } => {
            let policy = Policy {
                keep_daily,
                keep_weekly,
            };
            backup::prune(&cli.dir, policy, dry_run).map(|pruned| {
                if json {
                    let names = |paths: &[PathBuf]| paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
                    println!(
                        "{}",
                        serde_json::json!({
                            "dry_run": dry_run,
                            "kept": names(&pruned.kept),
                            "deleted": names(&pruned.deleted),
                            "unreadable": names(&pruned.unreadable),
                        })
                    );
                } else {
                    let verb = if dry_run { "would delete" } else { "deleted" };
                    for path in &pruned.deleted {
                        println!("{verb} {}", path.display());
                    }
                    for path in &pruned.unreadable {
                        println!("kept {} (its manifest cannot be read)", path.display());
                    }
                    println!(
                        "kept {}, {verb} {}, left {} unreadable (daily {keep_daily}, weekly {keep_weekly})",
                        pruned.kept.len(),
                        pruned.deleted.len(),
                        pruned.unreadable.len()
                    );
                }
                true
            })
        }
        Command::Restore { backup, into, force } => match backup::locate(&cli.dir, &backup) {
            Ok(backup) => backup::restore(&backup, &into, force, &mut progress)
                .await
                .map(|verified| verdict(json, &verified, &format!("restored into {}", backup::redact(&into)))),
            Err(err) => Err(err),
        },
        Command::Verify { backup, against } => match backup::locate(&cli.dir, &backup) {
            Ok(backup) => backup::verify(&backup, against.as_deref(), Some(&cli.database.url), &mut progress)
                .await
                .map(|verified| verdict(json, &verified, "verified")),
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(match err {
                BackupError::Unsupported(_) | BackupError::NotEmpty(_) => 2,
                _ => 1,
            })
        }
    }
}

fn report(json: bool, manifest: &Manifest, text: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(manifest).expect("serializes"));
    } else {
        println!("{}", text());
    }
}

/// Prints the per-table report; true when everything matched.
fn verdict(json: bool, verified: &Verified, what: &str) -> bool {
    let m = &verified.manifest;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": verified.ok(),
                "file_intact": verified.file_intact,
                "tables": m.tables.len(),
                "differences": verified.differences,
            })
        );
    } else {
        if !verified.file_intact {
            println!(
                "MISMATCH the backup file's checksum differs from its manifest: {}",
                m.file
            );
        }
        for d in &verified.differences {
            let rows =
                |t: &Option<backup::TableDigest>| t.as_ref().map_or("missing".into(), |t| format!("{} rows", t.rows));
            println!(
                "MISMATCH table {}: manifest {}, found {}{}",
                d.table,
                rows(&d.expected),
                rows(&d.found),
                match (&d.expected, &d.found) {
                    (Some(e), Some(f)) if e.rows == f.rows => " (same count, different content)",
                    _ => "",
                }
            );
        }
        if verified.ok() {
            println!(
                "{what}: {} tables, {} rows match the manifest of {}",
                m.tables.len(),
                m.total_rows(),
                m.file
            );
        } else {
            println!(
                "{what}: {} of {} tables differ from the manifest of {}",
                verified.differences.len(),
                m.tables.len(),
                m.file
            );
        }
    }
    verified.ok()
}

fn age(manifest: &Manifest) -> String {
    let minutes = (Utc::now() - manifest.created_at).num_minutes().max(0);
    match minutes {
        0..=59 => format!("{minutes}m"),
        60..=2879 => format!("{}h", minutes / 60),
        _ => format!("{}d", minutes / 1440),
    }
}
