//! A pure decoder for the pgoutput logical replication messages kappa needs
//! (protocol version 1): Relation, Insert, Update, Delete, Truncate, and the
//! ones it skips (Type, Origin). Bytes in, values out, no I/O — so it is unit
//! tested on byte slices. Begin and Commit are framed by the transport.
//!
//! Format: PostgreSQL docs, "Logical Replication Message Formats".

/// One column value inside a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    Null,
    /// An unchanged TOASTed value: the stream does not carry it.
    UnchangedToast,
    Text(Vec<u8>),
}

/// A column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key, for DEFAULT identity).
    pub is_key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// The decoded messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutput {
    Relation {
        relation_id: u32,
        namespace: String,
        name: String,
        replica_identity: u8,
        columns: Vec<RelationColumn>,
    },
    Insert {
        relation_id: u32,
        new: Vec<TupleValue>,
    },
    Update {
        relation_id: u32,
        /// Key columns ('K') or the whole old row ('O', REPLICA IDENTITY FULL),
        /// present only when the identity changed or is FULL.
        old: Option<Vec<TupleValue>>,
        new: Vec<TupleValue>,
    },
    Delete {
        relation_id: u32,
        old: Vec<TupleValue>,
    },
    Truncate {
        relation_ids: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    /// Messages kappa does not act on (Type, Origin, Begin/Commit when not
    /// framed by the transport).
    Ignored(u8),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "message truncated: wanted {n} bytes at offset {} of {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(self.u32()? as i32)
    }
    fn string(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        let text = String::from_utf8(rest[..len].to_vec()).map_err(|e| e.to_string())?;
        self.at += len + 1;
        Ok(text)
    }
    fn tuple(&mut self) -> Result<Vec<TupleValue>, String> {
        let count = self.i16()?;
        let count = usize::try_from(count).map_err(|_| format!("negative column count {count}"))?;
        (0..count)
            .map(|_| match self.u8()? {
                b'n' => Ok(TupleValue::Null),
                b'u' => Ok(TupleValue::UnchangedToast),
                b't' => {
                    let len = self.i32()?;
                    let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
                    Ok(TupleValue::Text(self.take(len)?.to_vec()))
                }
                b'b' => Err("binary tuple values are not requested by kappa".into()),
                other => Err(format!("unknown tuple value kind {:?}", other as char)),
            })
            .collect()
    }
}

/// Decodes one pgoutput message.
pub fn decode(bytes: &[u8]) -> Result<PgOutput, String> {
    let mut r = Reader { bytes, at: 0 };
    let tag = r.u8()?;
    let message = match tag {
        b'R' => {
            let relation_id = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let replica_identity = r.u8()?;
            let count = r.i16()?;
            let mut columns = Vec::with_capacity(count.max(0) as usize);
            for _ in 0..count {
                columns.push(RelationColumn {
                    is_key: r.u8()? & 1 == 1,
                    name: r.string()?,
                    type_oid: r.u32()?,
                    type_modifier: r.i32()?,
                });
            }
            PgOutput::Relation {
                relation_id,
                namespace,
                name,
                replica_identity,
                columns,
            }
        }
        b'I' => {
            let relation_id = r.u32()?;
            expect(&mut r, b'N')?;
            PgOutput::Insert {
                relation_id,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation_id = r.u32()?;
            let mut kind = r.u8()?;
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some(r.tuple()?);
                kind = r.u8()?;
            }
            if kind != b'N' {
                return Err(format!("update: expected 'N', got {:?}", kind as char));
            }
            PgOutput::Update {
                relation_id,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation_id = r.u32()?;
            let kind = r.u8()?;
            if kind != b'K' && kind != b'O' {
                return Err(format!(
                    "delete: expected 'K' or 'O', got {:?}",
                    kind as char
                ));
            }
            PgOutput::Delete {
                relation_id,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let count = r.u32()?;
            let options = r.u8()?;
            let relation_ids = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
            PgOutput::Truncate {
                relation_ids,
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
            }
        }
        // Type and Origin messages, and Begin/Commit/Message should the
        // transport pass them on: nothing to act on.
        b'Y' | b'O' | b'B' | b'C' | b'M' => return Ok(PgOutput::Ignored(tag)),
        // Anything else (protocol v2 stream messages, a newer server's
        // additions) could carry changes: never skipped in silence.
        other => {
            return Err(format!(
            "unknown pgoutput message {:?} (byte {other:#04x}): kappa speaks protocol version 1 \
                 and cannot tell whether it carries changes",
            other as char
        ))
        }
    };
    if r.at != bytes.len() {
        return Err(format!(
            "{} trailing bytes after a {:?} message",
            bytes.len() - r.at,
            tag as char
        ));
    }
    Ok(message)
}

fn expect(r: &mut Reader<'_>, tag: u8) -> Result<(), String> {
    let got = r.u8()?;
    if got == tag {
        Ok(())
    } else {
        Err(format!("expected {:?}, got {:?}", tag as char, got as char))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(text) => {
                    out.push(b't');
                    out.extend((text.len() as i32).to_be_bytes());
                    out.extend(text.as_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn decodes_relation() {
        let mut msg = vec![b'R'];
        msg.extend(16384u32.to_be_bytes());
        msg.extend(b"public\0t\0");
        msg.push(b'd');
        msg.extend(2i16.to_be_bytes());
        msg.push(1);
        msg.extend(b"id\0");
        msg.extend(20u32.to_be_bytes());
        msg.extend((-1i32).to_be_bytes());
        msg.push(0);
        msg.extend(b"name\0");
        msg.extend(25u32.to_be_bytes());
        msg.extend((-1i32).to_be_bytes());
        let PgOutput::Relation { columns, name, .. } = decode(&msg).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(name, "t");
        assert!(columns[0].is_key && !columns[1].is_key);
        assert_eq!(columns[1].type_oid, 25);
    }

    #[test]
    fn decodes_update_with_old_key() {
        let mut msg = vec![b'U'];
        msg.extend(7u32.to_be_bytes());
        msg.push(b'K');
        msg.extend(tuple(&[Some("1"), None]));
        msg.push(b'N');
        msg.extend(tuple(&[Some("2"), Some("x")]));
        assert_eq!(
            decode(&msg).unwrap(),
            PgOutput::Update {
                relation_id: 7,
                old: Some(vec![TupleValue::Text(b"1".to_vec()), TupleValue::Null]),
                new: vec![
                    TupleValue::Text(b"2".to_vec()),
                    TupleValue::Text(b"x".to_vec())
                ],
            }
        );
    }

    #[test]
    fn decodes_truncate_and_unchanged_toast() {
        let mut msg = vec![b'T'];
        msg.extend(2u32.to_be_bytes());
        msg.push(3);
        msg.extend(1u32.to_be_bytes());
        msg.extend(2u32.to_be_bytes());
        assert_eq!(
            decode(&msg).unwrap(),
            PgOutput::Truncate {
                relation_ids: vec![1, 2],
                cascade: true,
                restart_identity: true
            }
        );
        let mut insert = vec![b'I'];
        insert.extend(1u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(1i16.to_be_bytes());
        insert.push(b'u');
        assert_eq!(
            decode(&insert).unwrap(),
            PgOutput::Insert {
                relation_id: 1,
                new: vec![TupleValue::UnchangedToast]
            }
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut msg = vec![b'I'];
        msg.extend(1u32.to_be_bytes());
        msg.push(b'N');
        msg.extend(1i16.to_be_bytes());
        msg.push(b't');
        msg.extend(100i32.to_be_bytes());
        msg.extend(b"short");
        assert!(decode(&msg).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[b'D', 0, 0, 0, 1, b'X']).is_err());
    }

    #[test]
    fn an_unknown_tag_is_an_error_never_skipped() {
        let err = decode(&[b'S', 0, 0, 0, 7, 1]).unwrap_err();
        assert!(err.contains("unknown pgoutput message 'S'"), "{err}");
        assert!(matches!(
            decode(&[b'Y', 0, 0, 0, 1]),
            Ok(PgOutput::Ignored(b'Y'))
        ));
    }
}
