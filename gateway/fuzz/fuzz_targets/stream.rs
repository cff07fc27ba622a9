//! libFuzzer entry point: one input is one connection (see `src/lib.rs`).
#![no_main]

use xfed_gateway_fuzz::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xfed_gateway_fuzz::run(data);
});
