//! COPY text lines split into fields, each parsed as a column type, as the
//! snapshot does; and the same bytes parsed directly as one value, as a
//! pgoutput tuple value is.
#![no_main]

use kappa_fuzz::ArbColumnType;
use kappa_source::postgres::text::{copy_fields, parse_value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<ArbColumnType>, &[u8])| {
    let (types, line) = input;
    if types.is_empty() {
        return;
    }
    if let Ok(text) = std::str::from_utf8(line) {
        for ty in &types {
            let _ = parse_value(&ty.get(), text);
        }
    }
    if let Ok(fields) = copy_fields(line) {
        for (field, ty) in fields.iter().zip(types.iter().cycle()) {
            if let Some(text) = field {
                let _ = parse_value(&ty.get(), text);
            }
        }
    }
});
