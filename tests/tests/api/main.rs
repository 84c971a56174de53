//! Black-box tests of the whole stack: one binary, one module per feature.

mod account_security;
mod accounts;
mod admin_users;
mod audit;
mod audit_lifecycle;
mod backups;
mod catalogue;
mod constraints;
#[cfg(postgres)]
mod failover;
mod health;
mod hostile_input;
mod indexes;
mod metrics;
mod migrations;
mod no_n_plus_one;
mod openapi;
mod operator_commands;
mod outages;
mod point_in_time;
mod pool;
mod read_replicas;
mod readme;
mod reviews_and_shelves;
mod row_level_security;
mod search;
mod seed;
mod shared_cache;
mod sqlite_plans;
mod startup;
mod stats;
mod write_invalidation;
