//! Black-box tests of the whole stack: one binary, one module per feature.

mod account_security;
mod accounts;
mod admin_users;
mod constraints;
mod health;
mod migrations;
mod no_n_plus_one;
mod pool;
mod seed;
mod startup;
