//! Binlog row decoding: a TABLE_MAP built from the fuzz input (column types,
//! their metadata, signedness, optional metadata, a dropped-column mask) and
//! catalog kinds, then `RowPlan::decode` over arbitrary row-image bytes, as
//! the stream reads WRITE/UPDATE/DELETE_ROWS events. Any input gives values
//! or an error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use kappa_fuzz::ArbKind;
use kappa_schemas::TableName;
use kappa_source::mysql::rows::RowPlan;
use libfuzzer_sys::fuzz_target;
use mysql_common::binlog::consts::{BinlogVersion, EventType};
use mysql_common::binlog::events::{FormatDescriptionEvent, TableMapEvent};
use mysql_common::binlog::BinlogCtx;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;

/// The TABLE_MAP column type codes (`MYSQL_TYPE_*`); an index past the end
/// is used as a raw byte, so unknown codes are tried too.
const TYPES: &[u8] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 242, 245, 246, 247, 248,
    249, 250, 251, 252, 253, 254, 255,
];

/// Bytes of TABLE_MAP metadata a column of type `code` has.
fn metadata_len(code: u8) -> usize {
    match code {
        4 | 5 | 17 | 18 | 19 | 242 | 245 | 249..=252 | 255 => 1,
        15 | 16 | 246..=248 | 253 | 254 => 2,
        _ => 0,
    }
}

#[derive(Debug, Arbitrary)]
struct ArbTableColumn {
    ty: u8,
    metadata: [u8; 2],
    unsigned: bool,
    /// `false`: a column the table no longer has.
    kept: bool,
    kind: ArbKind,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    columns: Vec<ArbTableColumn>,
    /// Use the dropped-column mask (else every column is kept).
    masked: bool,
    /// Raw optional metadata appended after the signedness field.
    extra_optional: &'a [u8],
    rows: &'a [u8],
}

/// A length-encoded integer (`columns_count`, `columns_metadata`'s length).
fn lenenc(out: &mut Vec<u8>, n: usize) {
    if n < 251 {
        out.push(n as u8);
    } else {
        out.push(0xFC);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    }
}

fn table_map(input: &Input<'_>) -> Vec<u8> {
    let columns = &input.columns;
    let codes: Vec<u8> = columns
        .iter()
        .map(|c| TYPES.get(usize::from(c.ty)).copied().unwrap_or(c.ty))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(&7u64.to_le_bytes()[..6]); // table id
    out.extend_from_slice(&[0, 0]); // flags
    for name in [&b"fuzz"[..], b"t"] {
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.push(0);
    }
    lenenc(&mut out, columns.len());
    out.extend_from_slice(&codes);
    let mut metadata = Vec::new();
    for (c, &code) in columns.iter().zip(&codes) {
        metadata.extend_from_slice(&c.metadata[..metadata_len(code)]);
    }
    lenenc(&mut out, metadata.len());
    out.extend_from_slice(&metadata);
    out.extend(std::iter::repeat_n(0xFF, columns.len().div_ceil(8))); // nullable
    // Optional metadata: SIGNEDNESS (type 1), one bit per numeric column,
    // most significant first.
    let numeric: Vec<bool> = columns
        .iter()
        .zip(&codes)
        .filter(|(_, &code)| matches!(code, 0..=5 | 8 | 9 | 13 | 246))
        .map(|(c, _)| c.unsigned)
        .collect();
    let mut bits = vec![0u8; numeric.len().div_ceil(8)];
    for (i, &u) in numeric.iter().enumerate() {
        if u {
            bits[i / 8] |= 0x80 >> (i % 8);
        }
    }
    out.push(1);
    lenenc(&mut out, bits.len());
    out.extend_from_slice(&bits);
    out.extend_from_slice(input.extra_optional);
    out
}

fuzz_target!(|input: Input<'_>| {
    if input.columns.is_empty() || input.columns.len() > 64 {
        return;
    }
    // TIME2 of every fsp, negative ones included, is fuzzed: kappa's own
    // temporal decoder (source/src/mysql/rows/temporal.rs) replaced
    // mysql_common's, whose 1–2 digit branch panicked (issue [6]).
    let bytes = table_map(&input);
    let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
    let ctx = BinlogCtx::new(bytes.len(), &fde, EventType::TABLE_MAP_EVENT as u8);
    let Ok(tme) = TableMapEvent::deserialize(ctx, &mut ParseBuf(&bytes)) else {
        return;
    };
    let kept: Vec<bool> = input.columns.iter().map(|c| c.kept || !input.masked).collect();
    let kinds: Vec<_> = input
        .columns
        .iter()
        .zip(&kept)
        .filter(|(_, &k)| k)
        .enumerate()
        .map(|(i, (c, _))| c.kind.column(i))
        .collect();
    let mask = input.masked.then_some(kept.as_slice());
    let Ok(plan) = RowPlan::new(&tme, &kinds, mask) else {
        return;
    };
    let table = TableName::new("fuzz", "t");
    let mut buf = ParseBuf(input.rows);
    // As the stream does: rows until the event's bytes are used up.
    while !buf.is_empty() {
        if plan.decode(&table, &kinds, &mut buf).is_err() {
            break;
        }
    }
});
