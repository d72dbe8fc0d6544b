//! MySQL value conversion: every value a query result or the binlog's
//! generic decoder can hand over, for every catalog kind, converts to a
//! kappa value or an error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use kappa_fuzz::ArbKind;
use kappa_schemas::TableName;
use kappa_source::mysql::types::{convert, convert_row, Origin};
use libfuzzer_sys::fuzz_target;
use mysql_common::value::Value as My;

#[derive(Debug, Arbitrary)]
enum ArbValue {
    Null,
    Bytes(Vec<u8>),
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Date(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u32, u8, u8, u8, u32),
}

impl ArbValue {
    fn get(&self) -> My {
        match self {
            Self::Null => My::NULL,
            Self::Bytes(b) => My::Bytes(b.clone()),
            Self::Int(v) => My::Int(*v),
            Self::UInt(v) => My::UInt(*v),
            Self::Float(v) => My::Float(*v),
            Self::Double(v) => My::Double(*v),
            Self::Date(y, m, d, h, mi, s, us) => My::Date(*y, *m, *d, *h, *mi, *s, *us),
            Self::Time(neg, d, h, mi, s, us) => My::Time(*neg, *d, *h, *mi, *s, *us),
        }
    }
}

fuzz_target!(|input: (Vec<(ArbKind, ArbValue)>, bool)| {
    let (columns, binlog) = input;
    let table = TableName::new("fuzz", "t");
    let kinds: Vec<_> = columns.iter().enumerate().map(|(i, (k, _))| k.column(i)).collect();
    let values: Vec<My> = columns.iter().map(|(_, v)| v.get()).collect();
    let origin = if binlog { Origin::Binlog } else { Origin::Query };
    // One by one, so that a refused value does not hide the ones after it.
    for (kind, value) in kinds.iter().zip(&values) {
        let _ = convert(&table, kind, value.clone(), origin);
    }
    let _ = convert_row(&table, &kinds, values, origin);
});
