//! Tests of route typing. The table-driven tests are generated from the TSV files in
//! `filter/core/routes/`, and their expectations come from an independent, naive matcher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod benchmark;
mod config_validation;
mod generated_from_data;
mod reference_matcher;
mod request_rules;
mod tsv_fixtures;
