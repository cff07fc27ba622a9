//! Helpers shared by the integration tests; each test binary that needs them
//! says `mod common;`. Only what several binaries use belongs here.

// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod internal;
pub mod lab;
pub mod partners;
pub mod pebble;
pub mod pki;
pub mod prosody;
pub mod xfed;
