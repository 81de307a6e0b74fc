//! Masking: value detectors, strategies, the masker that applies them to text, and
//! the rules that decide what each session masks (for its client and its archive).

pub mod column_pattern;
pub mod config;
pub mod derived_relations;
pub mod detectors;
pub mod fold;
pub mod lineage;
pub mod relation_definitions;
pub mod rules;
pub mod session_masker;
pub mod strategy;
pub mod tally;
pub mod value_masker;
