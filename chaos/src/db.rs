//! One connection to the source database, PostgreSQL or MariaDB/MySQL, with
//! the few operations the workload and the final checks need.

use crate::schema::Dialect;
use anyhow::{Context, Result};
use mysql_async::prelude::Queryable;

pub enum Db {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl Db {
    pub async fn connect(d: Dialect, url: &str) -> Result<Self> {
        match d {
            Dialect::Postgres => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .with_context(|| format!("connect to PostgreSQL at {url}"))?;
                tokio::spawn(connection);
                Ok(Db::Postgres(client))
            }
            Dialect::Mysql => {
                let mut conn = mysql_async::Conn::from_url(url)
                    .await
                    .with_context(|| format!("connect to MySQL at {url}"))?;
                // TIMESTAMP literals are UTC instants.
                conn.query_drop("SET time_zone = '+00:00'").await?;
                Ok(Db::Mysql(conn))
            }
        }
    }

    /// Connects, retrying for up to `secs` seconds (the server may be
    /// restarting: that is one of the faults).
    pub async fn connect_retrying(d: Dialect, url: &str, secs: u64) -> Result<Self> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            match Self::connect(d, url).await {
                Ok(db) => return Ok(db),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
            }
        }
    }

    /// Runs statements outside a transaction (DDL, setup).
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        match self {
            Db::Postgres(c) => c.batch_execute(sql).await.with_context(|| trim(sql))?,
            Db::Mysql(c) => c.query_drop(sql).await.with_context(|| trim(sql))?,
        }
        Ok(())
    }

    /// Runs `statements` as one transaction. On an error the transaction is
    /// rolled back when the connection still answers; whether it committed is
    /// then unknown to the caller (the connection may have died in COMMIT).
    pub async fn transaction(&mut self, statements: &[String]) -> Result<()> {
        let begin = match self {
            Db::Postgres(_) => "BEGIN",
            Db::Mysql(_) => "START TRANSACTION",
        };
        let mut sql = String::from(begin);
        for s in statements {
            sql.push_str(";\n");
            sql.push_str(s);
        }
        sql.push_str(";\nCOMMIT");
        let result = self.execute(&sql).await;
        if result.is_err() {
            let _ = self.execute("ROLLBACK").await;
        }
        result
    }

    /// Every row of `sql`, each column as text (NULL as an empty string).
    pub async fn text_rows(&mut self, sql: &str) -> Result<Vec<Vec<String>>> {
        match self {
            Db::Postgres(c) => {
                let rows = c.simple_query(sql).await.with_context(|| trim(sql))?;
                Ok(rows
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                            (0..r.len())
                                .map(|i| r.get(i).unwrap_or_default().to_string())
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect())
            }
            Db::Mysql(c) => {
                let rows: Vec<mysql_async::Row> = c.query(sql).await.with_context(|| trim(sql))?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.as_ref(i) {
                                Some(mysql_async::Value::Bytes(b)) => {
                                    String::from_utf8_lossy(b).into_owned()
                                }
                                Some(mysql_async::Value::NULL) | None => String::new(),
                                Some(v) => v.as_sql(true).trim_matches('\'').to_string(),
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// The first column of the first row.
    pub async fn scalar(&mut self, sql: &str) -> Result<String> {
        self.text_rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .with_context(|| format!("no row from {sql}"))
    }
}

fn trim(sql: &str) -> String {
    let short: String = sql.chars().take(300).collect();
    if short.len() < sql.len() {
        format!("{short}…")
    } else {
        short
    }
}
