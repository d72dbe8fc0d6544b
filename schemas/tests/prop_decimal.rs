//! Properties of decimals: text ↔ unscaled integer (`decimal_text`,
//! `parse_decimal`, what the readers parse and the rebuild writes), and
//! unscaled integer ↔ the Avro `bytes` of a decimal (two's complement, big
//! endian, as kappa encodes it), at every scale.

mod prop_strategy;

use kappa_schemas::avro::encode_row;
use kappa_schemas::decode::decode_record;
use kappa_schemas::value::{decimal_text, parse_decimal};
use kappa_schemas::{Column, ColumnType, TableAvro, TableName, TableSchema, Value};
use num_bigint::BigInt;
use prop_strategy::unscaled;
use proptest::prelude::*;

fn scaled() -> impl Strategy<Value = (BigInt, u32)> {
    (1u32..=120).prop_flat_map(|digits| (unscaled(digits), 0..=digits.min(40)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn text_round_trips((n, scale) in scaled()) {
        let text = decimal_text(&n, scale);
        prop_assert_eq!(parse_decimal(&text, scale), Ok(n.clone()), "text {:?}", text);
        // Fewer fractional digits than the scale are padded, never refused.
        if let Some(short) = text.strip_suffix('0').filter(|t| t.contains('.')) {
            prop_assert_eq!(parse_decimal(short, scale), Ok(n.clone()));
        }
        // One digit past the scale would round: refused.
        let past = if scale == 0 { ".1" } else { "1" };
        let longer = format!("{text}{past}");
        prop_assert!(parse_decimal(&longer, scale).is_err(), "{:?}", longer);
    }

    /// A decimal column's datum is the Avro spec's form (a zig-zag length,
    /// then the two's-complement big-endian unscaled integer) and decodes
    /// back to the value.
    #[test]
    fn bytes_round_trip((n, scale) in scaled()) {
        let table = TableSchema {
            name: TableName::new("prop", "d"),
            columns: vec![Column {
                name: "d".into(),
                column_type: ColumnType::Decimal { precision: 120, scale },
                nullable: false,
                source_type: "numeric".into(),
            }],
            key_columns: vec![0],
        };
        let avro = TableAvro::new(&table, "prop.d").expect("schemas");
        let value = Value::Decimal { unscaled: n.clone(), scale };
        let datum = encode_row(&table, &avro, std::slice::from_ref(&value)).expect("encode");
        let bytes = n.to_signed_bytes_be();
        let mut expected = Vec::new();
        let mut zigzag = (bytes.len() as u64) << 1;
        loop {
            let b = (zigzag & 0x7F) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                expected.push(b);
                break;
            }
            expected.push(b | 0x80);
        }
        expected.extend_from_slice(&bytes);
        prop_assert_eq!(&datum, &expected);
        let decoded = decode_record(&avro.value_schema, &datum, 1).expect("decode");
        prop_assert_eq!(&decoded[0].1, &value);
        prop_assert_eq!(decimal_text(&n, scale), value.to_string());
    }

    /// Text a user could type (leading `+`, leading zeros, a bare fraction)
    /// parses to the value its canonical text names.
    #[test]
    fn loose_text_parses_to_the_canonical_value(
        negative in any::<bool>(),
        int in "[0-9]{0,30}",
        frac in "[0-9]{0,12}",
        zeros in 0usize..4,
    ) {
        prop_assume!(!(int.is_empty() && frac.is_empty()));
        let scale = 12u32;
        let sign = if negative { "-" } else { "+" };
        let text = format!("{sign}{}{int}.{frac}", "0".repeat(zeros));
        let parsed = parse_decimal(&text, scale).expect("a decimal");
        let digits = format!("{int}{frac:0<12}");
        let magnitude: BigInt = if digits.is_empty() { BigInt::from(0) } else { digits.parse().expect("digits") };
        prop_assert_eq!(parsed, if negative { -magnitude } else { magnitude });
    }
}
