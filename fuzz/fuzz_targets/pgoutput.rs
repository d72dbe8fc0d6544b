//! pgoutput message decoding: any bytes decode to a message or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kappa_source::postgres::pgoutput::decode(data);
});
