//! The two database engines behind one small interface.
//!
//! Every query of the store is written once, in the SQL both engines speak
//! (`$1` placeholders, `INSERT ... ON CONFLICT DO NOTHING`, `RETURNING`), and
//! goes through [`Engine`]; an engine only moves parameters and rows. The
//! few places where the dialects differ (identity columns, the lock that
//! serialises writers) are [`Engine`] methods, not `if` branches in queries.

use std::collections::HashMap;
use std::path::Path;

use crate::{Error, ErrorKind};

/// A query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A 64-bit integer (`BIGINT`).
    Int(i64),
    /// A double (`REAL` / `DOUBLE PRECISION`).
    Real(f64),
    /// Text.
    Text(String),
    /// A NULL double.
    NullReal,
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Real(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_owned())
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}

/// One column of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer column.
    Int(i64),
    /// A floating-point column.
    Real(f64),
    /// A text column.
    Text(String),
}

impl Cell {
    /// The integer, or 0 for anything else (the store's own columns are typed).
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(v) => *v,
            Cell::Real(v) => *v as i64,
            _ => 0,
        }
    }
    /// The number, NaN for NULL or text.
    pub fn real(&self) -> f64 {
        match self {
            Cell::Int(v) => *v as f64,
            Cell::Real(v) => *v,
            _ => f64::NAN,
        }
    }
    /// The text, empty for anything else.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(v) => v.to_string(),
            Cell::Real(v) => v.to_string(),
            Cell::Null => String::new(),
        }
    }
}

/// A result row.
pub type Row = Vec<Cell>;

/// What a database engine provides to the store.
pub trait Engine: Send {
    /// `sqlite` or `postgres`, for messages.
    fn name(&self) -> &'static str;
    /// Runs statements without parameters or results (DDL, COMMIT).
    fn batch(&mut self, sql: &str) -> Result<(), Error>;
    /// Runs one statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error>;
    /// Runs one query; its rows.
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error>;
    /// Starts a transaction that will write, taking the writers' lock now so
    /// two processes never both read and then both fail to write.
    fn begin_write(&mut self) -> Result<(), Error>;
    /// The column type of a generated integer key.
    fn id_column(&self) -> &'static str;
    /// The column type of a double.
    fn real_column(&self) -> &'static str;
    /// Whether a table of this name is there, by a read of the catalogue
    /// (the name resolved as the store's unqualified names are).
    fn has_table(&mut self, name: &str) -> Result<bool, Error>;
    /// Whether this connection can only read (a history opened read-only).
    fn read_only(&self) -> bool {
        false
    }
}

fn db_err(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Database(what.to_string()))
}

/// `$1` -> `?1`: SQLite reads `$1` as a named parameter, so positions are
/// made explicit once per statement text.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// SQLite through rusqlite's bundled library.
pub struct Sqlite {
    conn: rusqlite::Connection,
    texts: HashMap<String, String>,
    read_only: bool,
}

/// Whether this process may write `path` and create files beside it (the
/// WAL's `-wal` and `-shm`, a rollback journal): what opening a SQLite
/// history for writing needs. `access(2)` answers for this user, so a
/// file the user may only read, one in a folder the user may only read,
/// and one on a read-only mount all say no (root included for the mount).
pub fn sqlite_writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let may_write = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            // SAFETY: a valid NUL-terminated path; access(2) only reads it.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    may_write(path) && may_write(dir)
}

/// `path` as an absolute SQLite `file:` URI: `%`, `?`, `#` and every byte
/// outside printable ASCII escaped, so any file name survives.
fn sqlite_uri(path: &Path) -> Result<String, Error> {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).map_err(|e| db_err(format!("{}: {e}", path.display())))?;
    let mut uri = String::from("file://");
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02x}"));
        }
    }
    Ok(uri)
}

impl Sqlite {
    /// Opens (creating) the database file, its folder too.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::new(ErrorKind::Database(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )))
            })?;
        }
        let conn = rusqlite::Connection::open(path).map_err(db_err)?;
        // Several `perfkit run --record` may write at once: WAL lets readers
        // go on during a write, and writers wait for each other (up to a
        // minute) instead of failing with "database is locked".
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Sqlite {
            conn,
            texts: HashMap::new(),
            read_only: false,
        })
    }

    /// Opens an existing database file to read only, whatever the
    /// permissions: no pragma set, nothing written to the file. A WAL
    /// database is read through its `-shm` index, which SQLite makes beside
    /// it where it can; in a folder this user may not write, with no `-wal`
    /// holding anything (so no connection has the database open to write),
    /// it is read as immutable instead, the one way SQLite reads it there.
    pub fn open_read_only(path: &Path) -> Result<Sqlite, Error> {
        use rusqlite::{ErrorCode, OpenFlags};
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let uri = sqlite_uri(path)?;
        let open = |uri: &str| -> Result<rusqlite::Connection, rusqlite::Error> {
            let conn = rusqlite::Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(std::time::Duration::from_secs(60))?;
            // Opening is lazy: the first read is what finds the index unmakeable.
            conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(conn)
        };
        let conn = match open(&uri) {
            Ok(c) => c,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::ReadOnly | ErrorCode::CannotOpen)
                    && !wal_holds_anything(path) =>
            {
                open(&format!("{uri}?immutable=1")).map_err(db_err)?
            }
            Err(e) => return Err(db_err(e)),
        };
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Sqlite {
            conn,
            texts: HashMap::new(),
            read_only: true,
        })
    }

    fn text(&mut self, sql: &str) -> String {
        if let Some(t) = self.texts.get(sql) {
            return t.clone();
        }
        let t = sqlite_placeholders(sql);
        self.texts.insert(sql.to_owned(), t.clone());
        t
    }
}

/// Whether the database's `-wal` file holds frames: a connection has it
/// open to write, or one ended without a checkpoint. Either way only a
/// read through the WAL index sees the newest figures.
fn wal_holds_anything(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

fn sqlite_params(params: &[Param]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => V::Integer(*v),
            Param::Real(v) => V::Real(*v),
            Param::Text(s) => V::Text(s.clone()),
            Param::NullReal => V::Null,
        })
        .collect()
}

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.conn.execute_batch(sql).map_err(db_err)
    }
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        let text = self.text(sql);
        let mut st = self.conn.prepare_cached(&text).map_err(db_err)?;
        let n = st
            .execute(rusqlite::params_from_iter(sqlite_params(params)))
            .map_err(db_err)?;
        Ok(n as u64)
    }
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        use rusqlite::types::ValueRef;
        let text = self.text(sql);
        let mut st = self.conn.prepare_cached(&text).map_err(db_err)?;
        let width = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(sqlite_params(params)))
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(db_err)? {
            let mut row = Vec::with_capacity(width);
            for i in 0..width {
                row.push(match r.get_ref(i).map_err(db_err)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => Cell::Null,
                });
            }
            out.push(row);
        }
        Ok(out)
    }
    fn begin_write(&mut self) -> Result<(), Error> {
        // IMMEDIATE takes the write lock at BEGIN (waiting under the busy
        // timeout), so a reader never has to upgrade and deadlock.
        self.batch("BEGIN IMMEDIATE")
    }
    fn id_column(&self) -> &'static str {
        "INTEGER PRIMARY KEY"
    }
    fn real_column(&self) -> &'static str {
        "REAL"
    }
    fn has_table(&mut self, name: &str) -> Result<bool, Error> {
        let rows = self.query(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            &[name.into()],
        )?;
        Ok(rows.first().is_some_and(|r| r[0].int() > 0))
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
}

/// PostgreSQL through the `postgres` crate (synchronous client).
pub struct Postgres {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host/db`, or
    /// `postgresql:///db?host=/path/to/socket-dir` for a Unix socket).
    pub fn connect(url: &str) -> Result<Postgres, Error> {
        let client = postgres::Client::connect(url, postgres::NoTls)
            .map_err(|e| db_err(format!("cannot connect to {}: {e}", redact(url))))?;
        Ok(Postgres {
            client,
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(db_err)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn pg_params(params: &[Param]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                Param::Int(v) => Box::new(*v),
                Param::Real(v) => Box::new(*v),
                Param::Text(s) => Box::new(s.clone()),
                Param::NullReal => Box::new(None::<f64>),
            }
        })
        .collect()
}

impl Engine for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql).map_err(db_err)
    }
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        let st = self.statement(sql)?;
        let owned = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            owned.iter().map(|b| b.as_ref()).collect();
        self.client.execute(&st, &refs).map_err(db_err)
    }
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        use postgres::types::Type;
        let st = self.statement(sql)?;
        let owned = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            owned.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(&st, &refs).map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, c) in r.columns().iter().enumerate() {
                let t = c.type_();
                let cell = if *t == Type::INT8 {
                    r.try_get::<_, Option<i64>>(i).map(|v| v.map(Cell::Int))
                } else if *t == Type::INT4 {
                    r.try_get::<_, Option<i32>>(i)
                        .map(|v| v.map(|x| Cell::Int(x.into())))
                } else if *t == Type::FLOAT8 {
                    r.try_get::<_, Option<f64>>(i).map(|v| v.map(Cell::Real))
                } else {
                    r.try_get::<_, Option<String>>(i).map(|v| v.map(Cell::Text))
                }
                .map_err(db_err)?;
                row.push(cell.unwrap_or(Cell::Null));
            }
            out.push(row);
        }
        Ok(out)
    }
    fn begin_write(&mut self) -> Result<(), Error> {
        // One writer at a time, as in SQLite: the import's "insert if new,
        // then read the id" steps stay simple and never see a half-made run.
        // The lock ends with the transaction.
        self.batch("BEGIN; SELECT pg_advisory_xact_lock(7243011)")
    }
    fn id_column(&self) -> &'static str {
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    }
    fn real_column(&self) -> &'static str {
        "DOUBLE PRECISION"
    }
    fn has_table(&mut self, name: &str) -> Result<bool, Error> {
        let rows = self.query(
            "SELECT CASE WHEN to_regclass(CAST($1 AS TEXT)) IS NULL THEN 0 ELSE 1 END",
            &[name.into()],
        )?;
        Ok(rows.first().is_some_and(|r| r[0].int() > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_positional_for_sqlite() {
        assert_eq!(
            sqlite_placeholders("SELECT $1, '$', $12 FROM t"),
            "SELECT ?1, '$', ?12 FROM t"
        );
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://ci:secret@db.lab/perf"),
            "postgres://ci:***@db.lab/perf"
        );
        assert_eq!(redact("postgres://ci@db/perf"), "postgres://ci@db/perf");
    }
}
