//! Bookworm's HTTP API as a library, so the binary and the black-box tests boot the
//! very same server (see [`startup::Application`]).

pub mod config;
pub mod context;
pub mod problem;
pub mod routes;
pub mod startup;
pub mod telemetry;
