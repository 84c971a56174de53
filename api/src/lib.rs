//! Bookworm's HTTP API as a library, so the binary and the black-box tests boot the
//! very same server (see [`startup::Application`]).

pub mod auth;
pub mod background;
pub mod commands;
pub mod config;
pub mod context;
pub mod doctor;
pub mod extract;
pub mod http_cache;
pub mod log_fields;
pub mod log_time;
pub mod log_writer;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod request_log;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod throttle;
pub mod views;
