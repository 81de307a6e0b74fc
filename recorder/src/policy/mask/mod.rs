//! Masking: value detectors, strategies, and the masker that applies them to text.

pub mod detectors;
pub mod strategy;
pub mod value_masker;
