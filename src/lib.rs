//! lakecheck proves a data lake matches its source: rule files describe checks, sources answer
//! SQL where the data lives, and reports (console, JUnit, HTML, JSON) tell people and CI.
//!
//! Data flows one way: `rules` → `runner` (plan) → `sources` + `checks` → `results` → `report`.

pub mod app;
pub mod checks;
pub mod demo;
pub mod reconcile;
pub mod report;
pub mod results;
pub mod rules;
pub mod runner;
pub mod sources;
pub mod sql;
